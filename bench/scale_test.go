package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ferry-gitops/ferry/internal/ring"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/webhooks"
)

// scaleEnvs are each repository's environments in BenchmarkScale.
var scaleEnvs = []string{"dev", "staging", "prod"}

// BenchmarkScale runs one ferry serve over BENCH_REPOS (default 1,000)
// repositories × 3 environments of 20 objects (a Namespace and 19
// ConfigMaps), then three replicas sharing the same repositories through a
// ring, on one kwok cluster and one Git server. It reports:
//   - single: cold start → every environment healthy (cold-start-s), RSS once
//     settled and after an idle resync (rss-MiB), and the requests the API
//     server counted during that resync, per kind per environment (the most
//     of any kind: resync-req/kind/env);
//   - a replaced pod: a new process with an empty data directory over a
//     cluster that already holds every object → every environment healthy
//     (new-pod-start-s);
//   - ring: time for three new replicas to have every environment healthy
//     (ring-start-s), each replica's RSS as a share of the single replica's
//     (the largest: ring-rss-share);
//   - push → applied p50 for the single replica and for the ring with the
//     webhook sent to a replica that does not own the repository (forwarded),
//     and their difference (ring-push-extra-ms).
//
// Budgets (issue 15): cold start ≤ 60 s, RSS ≤ 300 MiB, idle resync ≤ 1
// request per kind per environment; each replica ≤ 40 % of the single RSS;
// push → applied p50 within 20 ms of the single replica's.
// Run: go test ./bench -run '^$' -bench Scale -benchtime 1x -timeout 60m
func BenchmarkScale(b *testing.B) {
	repos := 1000
	if n, err := strconv.Atoi(os.Getenv("BENCH_REPOS")); err == nil && n > 0 {
		repos = n
	}
	ferryBin := testenv.BuildFerry(b)
	ctx, cancel := context.WithTimeout(b.Context(), 3*time.Minute)
	cluster, err := testenv.StartCluster(ctx, testenv.ClusterOptions{})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cluster.Stop() })
	srv := testenv.NewGitServer(b, testenv.GitServerOptions{})

	names := make([]string, repos)
	heads := make([]string, repos)
	var entries strings.Builder
	for i := range names {
		names[i] = fmt.Sprintf("s%04d", i)
		if heads[i], err = importRoot(srv, names[i], scaleRepo(names[i], 0)); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&entries, "  - name: %s\n    url: %s/%s.git\n    allowLocal: true\n    github: {owner: acme, repo: %s}\n    environments:\n", names[i], srv.URL, names[i], names[i])
		for _, env := range scaleEnvs {
			fmt.Fprintf(&entries, "      - {name: %s, path: environments/%s, cluster: {kubeconfig: %q}}\n", env, env, cluster.Kubeconfig)
		}
	}
	if _, err := cluster.Client.CoreV1().Namespaces().Create(b.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-ring"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	config := func(coordination string) string {
		path := filepath.Join(b.TempDir(), "ferry.yaml")
		text := fmt.Sprintf(listenConfig+"resync: \"@every 1m\"\ndataDir: %q\nwebhook: {secretEnv: BENCH_WEBHOOK_SECRET}\n%srepositories:\n%s", b.TempDir(), coordination, entries.String())
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		return path
	}
	env := []string{"BENCH_WEBHOOK_SECRET=" + hookSecret, "BENCH_RING_TOKEN=bench-ring-token"}
	envs := repos * len(scaleEnvs)
	round := 0
	push := func(to *testenv.Ferry, i int) time.Duration {
		round++
		value := fmt.Sprintf("push-%d", round)
		shas, err := srv.ImportCommits(names[i], heads[i], []map[string]string{{"environments/dev/settings.yaml": scaleSettings(value)}})
		if err != nil {
			b.Fatal(err)
		}
		heads[i] = shas[0]
		ns := names[i] + "-dev"
		// The list's resourceVersion, not the object's: a watch from an
		// object last written minutes and 60,000 writes ago is answered
		// 410 Gone once the API server's watch cache has moved past it.
		current, err := cluster.Client.CoreV1().ConfigMaps(ns).List(b.Context(), metav1.ListOptions{FieldSelector: "metadata.name=setting-00"})
		if err != nil {
			b.Fatal(err)
		}
		if err := srv.MoveBranch(names[i], "main", heads[i]); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		scaleWebhook(b, to, names[i], heads[i])
		if err := settingApplied(b.Context(), cluster, ns, current.ResourceVersion, value); err != nil {
			saveProfile(b, to, "failed", "goroutine?debug=2")
			if dir := os.Getenv("BENCH_PROFILE_DIR"); dir != "" {
				os.WriteFile(filepath.Join(dir, "failed.log"), []byte(to.Logs()), 0o644)
			}
			b.Fatalf("%s: %v\n%s", names[i], err, to.Tail(20))
		}
		return time.Since(start)
	}
	const trials = 40

	for b.Loop() {
		// One replica, cold: every object is created.
		start := time.Now()
		single := testenv.StartFerry(b, ferryBin, config(""), env, 5*time.Minute)
		healthy(b, single, envs, 30*time.Minute)
		b.ReportMetric(time.Since(start).Seconds(), "cold-start-s")
		settled, _, _ := single.RSS()
		b.ReportMetric(settled, "settled-rss-MiB")

		// An idle resync: nothing changed, so each environment costs its
		// drift check's LISTs and nothing else.
		perKind := idleResync(b, cluster, envs, single)
		b.ReportMetric(slices.Max(mapValues(perKind)), "resync-req/kind/env")
		b.Logf("idle resync, one replica, requests per environment by verb and resource: %v", perKind)
		singleRSS, peak, _ := single.RSS()
		b.ReportMetric(singleRSS, "rss-MiB")
		b.ReportMetric(peak, "peak-rss-MiB")
		saveProfile(b, single, "single", "heap")

		var singleLat []time.Duration
		for t := range trials {
			singleLat = append(singleLat, push(single, (t*37)%repos))
		}
		b.Logf("single replica: %s", rssParts(b, single))
		if err := single.Stop(); err != nil {
			b.Fatal(err)
		}

		// A new process with an empty data directory over a cluster that
		// already holds every object: what a replaced pod does. Every
		// repository is cloned, every environment read back and checked.
		start = time.Now()
		replaced := testenv.StartFerry(b, ferryBin, config(""), env, 5*time.Minute)
		healthy(b, replaced, envs, 30*time.Minute)
		b.ReportMetric(time.Since(start).Seconds(), "new-pod-start-s")
		if err := replaced.Stop(); err != nil {
			b.Fatal(err)
		}

		// Three replicas over the same repositories and objects.
		coordination := fmt.Sprintf("coordination: {kubeconfig: %q, namespace: ferry-ring, leaseDuration: 3s, listen: \"127.0.0.1:0\", tokenEnv: BENCH_RING_TOKEN}\n", cluster.Kubeconfig)
		ids := []string{"ferry-0", "ferry-1", "ferry-2"}
		replicas := map[string]*testenv.Ferry{}
		start = time.Now()
		for _, id := range ids {
			replicas[id] = testenv.StartFerry(b, ferryBin, config(coordination), append(env, "POD_NAME="+id), 5*time.Minute)
		}
		healthy(b, replicas[ids[0]], envs, 30*time.Minute)
		b.ReportMetric(time.Since(start).Seconds(), "ring-start-s")
		perKind = idleResync(b, cluster, envs, replicas[ids[0]], replicas[ids[1]], replicas[ids[2]])
		b.ReportMetric(slices.Max(mapValues(perKind)), "ring-resync-req/kind/env")
		b.Logf("idle resync, three replicas, requests per environment by verb and resource: %v", perKind)
		var share float64
		for _, id := range ids {
			rss, _, _ := replicas[id].RSS()
			b.Logf("replica %s: RSS %.0f MiB, %.0f%% of the single replica's; %s", id, rss, 100*rss/singleRSS, rssParts(b, replicas[id]))
			saveProfile(b, replicas[id], id, "heap")
			share = max(share, rss/singleRSS)
		}
		b.ReportMetric(100*share, "ring-rss-share-%")

		members := make([]ring.Member, len(ids))
		for i, id := range ids {
			members[i] = ring.Member{Identity: id}
		}
		var ringLat []time.Duration
		for t := range trials {
			i := (t*37 + 11) % repos
			owner, _ := ring.OwnerAmong(members, names[i])
			to := replicas[ids[(slices.Index(ids, owner.Identity)+1)%len(ids)]] // not the owner
			ringLat = append(ringLat, push(to, i))
		}
		p50s, _ := percentiles(singleLat)
		p50r, _ := percentiles(ringLat)
		b.ReportMetric(ms(p50s), "single-push-p50-ms")
		b.ReportMetric(ms(p50r), "ring-push-p50-ms")
		b.ReportMetric(ms(p50r-p50s), "ring-push-extra-ms")
		for _, id := range ids {
			if err := replicas[id].Stop(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// saveProfile writes ferry's pprof profile (heap, goroutine?debug=2, …) to
// $BENCH_PROFILE_DIR/<name>.<profile's name> when that is set.
func saveProfile(b *testing.B, ferry *testenv.Ferry, name, profile string) {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return
	}
	resp, err := http.Get(ferry.Admin + "/debug/pprof/" + profile)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	kind, _, _ := strings.Cut(profile, "?")
	f, err := os.Create(filepath.Join(dir, name+"."+kind))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
}

// scaleRepo is one repository's files: per environment a Namespace and 19
// ConfigMaps.
func scaleRepo(name string, value any) map[string]string {
	files := map[string]string{}
	for _, env := range scaleEnvs {
		ns := name + "-" + env
		files["environments/"+env+"/kustomization.yaml"] = "namespace: " + ns + "\nresources: [namespace.yaml, settings.yaml]\n"
		files["environments/"+env+"/namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n"
		files["environments/"+env+"/settings.yaml"] = scaleSettings(fmt.Sprint(value))
	}
	return files
}

func scaleSettings(first string) string {
	var docs []string
	for i := range 19 {
		v := strconv.Itoa(i)
		if i == 0 {
			v = first
		}
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: setting-%02d}\ndata: {value: %q}\n", i, v))
	}
	return strings.Join(docs, "---\n")
}

// importRoot creates repository name on srv with one commit of files on
// main, by git fast-import (a thousand pushes would take minutes).
func importRoot(srv *testenv.GitServer, name string, files map[string]string) (string, error) {
	if _, err := srv.CreateBareRepo(name); err != nil {
		return "", err
	}
	var stream bytes.Buffer
	data := func(s string) { fmt.Fprintf(&stream, "data %d\n%s\n", len(s), s) }
	stream.WriteString("commit refs/heads/main\nmark :1\ncommitter Ferry Bench <bench@ferry.invalid> 1700000000 +0000\n")
	data("models")
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(&stream, "M 100644 inline %s\n", p)
		data(files[p])
	}
	stream.WriteString("get-mark :1\n")
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = srv.RepoDir(name)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdin = &stream
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("import %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// scaleWebhook sends ferry a signed push webhook for repository name at sha.
func scaleWebhook(b *testing.B, ferry *testenv.Ferry, name, sha string) {
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"acme/%s"}}`, sha, name))
	req, _ := http.NewRequest(http.MethodPost, ferry.Public+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "bench-"+sha)
	req.Header.Set("X-Hub-Signature-256", webhooks.Sign([]byte(hookSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
}

// settingApplied waits until ConfigMap setting-00 in ns holds value,
// watching from rv.
func settingApplied(ctx context.Context, c *testenv.Cluster, ns, rv, value string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := c.Client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, FieldSelector: "metadata.name=setting-00"})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			return fmt.Errorf("%s: watch: %v", ns, apierrors.FromObject(ev.Object))
		}
		if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Modified && cm.Data["value"] == value {
			return nil
		}
	}
	return fmt.Errorf("%s: %s never applied", ns, value)
}

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

// reconcileTotal reads ferry_reconcile_total, every result summed, from
// ferry's admin listener.
func reconcileTotal(b *testing.B, ferry *testenv.Ferry) float64 {
	resp, err := http.Get(ferry.Admin + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "ferry_reconcile_total{") {
			_, value, _ := strings.Cut(line, "} ")
			v, _ := strconv.ParseFloat(value, 64)
			total += v
		}
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
			n += reconcileTotal(b, f)
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

func mapValues(m map[string]float64) []float64 {
	out := []float64{0}
	for _, v := range m {
		out = append(out, v)
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
	resp, err := http.Get(ferry.Admin + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			parts = append(parts, fmt.Sprintf("heap in use %.0f MiB", n/(1<<20)))
		}
	}
	return strings.Join(parts, ", ")
}
