package bench

import (
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

// BenchmarkScale runs ferry serve over BENCH_REPOS (default 1,000)
// repositories × 3 environments of 20 objects (a Namespace and 19
// ConfigMaps) on one kwok cluster and one Git server, in three phases:
//   - first install: one replica creates every object → every environment
//     healthy (first-install-s, and its peak RSS);
//   - single: a cold start, a new process with an empty data directory over
//     the cluster that now holds every object → every environment healthy
//     (cold-start-s); its RSS after an idle resync (rss-MiB), the requests
//     the API server counted during that resync per kind per environment
//     (the most of any kind: resync-req/kind/env), and push → applied p50;
//   - ring: three new replicas sharing the repositories: start → every
//     environment healthy (ring-start-s), their idle resync, each replica's
//     RSS as a share of the single replica's (the largest: ring-rss-share),
//     and push → applied p50 with the webhook sent to a replica that does
//     not own the repository (forwarded), less the single's
//     (ring-push-extra-ms).
//
// The single replica and the ring replicas start alike, over objects that
// exist, so their memory is compared like for like.
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
		// A first install: one replica creates every object.
		start := time.Now()
		installer := testenv.StartFerry(b, ferryBin, config(""), env, 5*time.Minute)
		healthy(b, installer, envs, 30*time.Minute)
		b.ReportMetric(time.Since(start).Seconds(), "first-install-s")
		_, peak, _ := installer.RSS()
		b.ReportMetric(peak, "first-install-peak-rss-MiB")
		if err := installer.Stop(); err != nil {
			b.Fatal(err)
		}

		// A cold start: a new process with an empty data directory over a
		// cluster that already holds every object, as a replaced pod or a
		// ring replica meets it. Every repository is cloned, every
		// environment read back and checked. It is the single replica the
		// ring is compared with.
		start = time.Now()
		single := testenv.StartFerry(b, ferryBin, config(""), env, 5*time.Minute)
		healthy(b, single, envs, 30*time.Minute)
		b.ReportMetric(time.Since(start).Seconds(), "cold-start-s")

		// An idle resync: nothing changed, so each environment costs its
		// drift check's LISTs and nothing else.
		perKind := idleResync(b, cluster, envs, single)
		b.ReportMetric(most(perKind), "resync-req/kind/env")
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
		b.ReportMetric(most(perKind), "ring-resync-req/kind/env")
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
// $BENCH_PROFILE_DIR/<name>.<profile's name>, and its resident memory by
// mapping (/proc/<pid>/smaps) to <name>.smaps, when that is set.
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
	smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", ferry.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".smaps"), smaps, 0o644); err != nil {
		b.Fatal(err)
	}
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
