package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// apiRequests reads the API server's apiserver_request_total, summed by verb
// and resource.
func apiRequests(b *testing.B, c *testenv.Cluster) map[string]float64 {
	raw, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels, value, _ := strings.Cut(line[len("apiserver_request_total{"):], "} ")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		out[label(labels, "verb")+" "+label(labels, "resource")] += v
	}
	return out
}

func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// perEnvironment is the requests counted between before and after, per
// environment, by verb and resource; leases (the control plane's own
// heartbeats) are left out.
func perEnvironment(after, before map[string]float64, envs int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && !strings.HasSuffix(k, " leases") {
			out[k] = d / float64(envs)
		}
	}
	return out
}

// metricSum reads ferry's /metrics on its admin listener and sums the
// samples of the metric name, every label set.
func metricSum(b *testing.B, ferry *testenv.Ferry, name string) float64 {
	resp, err := http.Get(ferry.Admin + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		at := strings.LastIndexByte(line, ' ') // label values may hold spaces
		if at < 0 {
			continue
		}
		series, value := line[:at], line[at+1:]
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		total += v
	}
	return total
}

// idleResync counts the requests the API server serves while ferries
// reconcile every one of envs environments once more with nothing changed
// (their next resync), per environment, by verb and resource.
func idleResync(b *testing.B, cluster *testenv.Cluster, envs int, ferries ...*testenv.Ferry) map[string]float64 {
	total := func() float64 {
		var n float64
		for _, f := range ferries {
			n += metricSum(b, f, "ferry_reconcile_total")
		}
		return n
	}
	before, start := apiRequests(b, cluster), total()
	deadline := time.Now().Add(5 * time.Minute)
	for total() < start+float64(envs) {
		if time.Now().After(deadline) {
			b.Fatalf("no resync of all %d environments within 5 minutes", envs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return perEnvironment(apiRequests(b, cluster), before, envs)
}

// most is the largest value of m, 0 for an empty m.
func most(m map[string]float64) float64 {
	var out float64
	for _, v := range m {
		out = max(out, v)
	}
	return out
}

// rssParts is ferry's resident memory by kind (anonymous: its heap and
// stacks; file: the executable's pages, shared with any other process
// running it) and its Go heap in use, from /proc and its metrics.
func rssParts(b *testing.B, ferry *testenv.Ferry) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ferry.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for line := range strings.Lines(string(raw)) {
		if strings.HasPrefix(line, "RssAnon:") || strings.HasPrefix(line, "RssFile:") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	heap := metricSum(b, ferry, "go_memstats_heap_inuse_bytes")
	parts = append(parts, fmt.Sprintf("heap in use %.0f MiB", heap/(1<<20)))
	return strings.Join(parts, ", ")
}
