package webhooks

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-gitops/ferry/internal/httpserver"
)

// BenchmarkAckUnderBurst sends 200 signed push deliveries per second for 10
// seconds, open loop (each request leaves at its scheduled time, from a pool of
// goroutines), over loopback to the real hardened http.Server, and measures the
// time from the scheduled send to the answer. It reports p50/p99 in ms and how
// many acknowledged deliveries did not produce exactly one event.
// Run: go test ./webhooks -run '^$' -bench AckUnderBurst -benchtime 1x
func BenchmarkAckUnderBurst(b *testing.B) {
	const (
		rate     = 200
		duration = 10 * time.Second
		workers  = 64
	)
	body, err := readFixture("push.json")
	if err != nil {
		b.Fatal(err)
	}
	signature := Sign(secret, body)

	for b.Loop() {
		// The sink is what the engine will be: a buffered queue drained by a worker.
		events := make(chan Event, 1024)
		received := map[string]int{}
		var drained sync.WaitGroup
		drained.Go(func() {
			for ev := range events {
				received[ev.Delivery]++
			}
		})
		h, err := NewGitHub(Options{
			Secrets:      [][]byte{secret},
			Repositories: []Repository{{Name: "ml-models", FullName: "acme/ml-models", Branch: "main"}},
			Sink: func(ev Event) bool {
				select {
				case events <- ev:
					return true
				default:
					return false
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := httpserver.New(ln.Addr().String(), h, httpserver.Options{})
		go srv.Serve(ln)
		url := "http://" + ln.Addr().String() + "/webhooks/github"
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}

		type result struct {
			latency time.Duration
			status  int
			id      string
		}
		total := int(duration.Seconds()) * rate
		results := make([]result, total)
		jobs := make(chan int)
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for i := range jobs {
					scheduled := start.Add(time.Duration(i) * time.Second / rate)
					id := fmt.Sprintf("burst-%06d", i)
					req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
					req.Header.Set("X-GitHub-Event", "push")
					req.Header.Set("X-GitHub-Delivery", id)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-Hub-Signature-256", signature)
					resp, err := client.Do(req)
					r := result{id: id, latency: time.Since(scheduled)}
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						r.status = resp.StatusCode
					}
					results[i] = r
				}
			})
		}
		for i := range total {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		srv.Close()
		close(events)
		drained.Wait()

		latencies := make([]time.Duration, 0, total)
		lost, acked := 0, 0
		for _, r := range results {
			latencies = append(latencies, r.latency)
			if r.status == http.StatusAccepted {
				acked++
				if received[r.id] != 1 {
					lost++
				}
			}
		}
		slices.Sort(latencies)
		pct := func(p float64) float64 {
			return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max-ms")
		b.ReportMetric(float64(acked), "acked")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(len(received)), "events")
		if acked != total {
			b.Errorf("%d of %d deliveries were not acknowledged with 202", total-acked, total)
		}
	}
}
