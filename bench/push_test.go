package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/webhooks"
)

const (
	hookSecret = "bench-webhook-secret"
	settings   = 17 // ConfigMaps; with the Namespace, Deployment and Service: 20 objects
)

func settingsYAML() string {
	var docs []string
	for i := range settings {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: setting-%02d}\ndata: {value: \"%d\"}\n", i, i))
	}
	return strings.Join(docs, "---\n")
}

// baselineRepo is the same 20 objects as plain manifests, as a team without
// ferry would keep them; a release bumps the version in pins.yaml.
func baselineRepo(ns string) map[string]string {
	return map[string]string{
		"environments/dev/kustomization.yaml": "namespace: " + ns + "\nresources: [namespace.yaml, server.yaml, settings.yaml]\npatches:\n- path: pins.yaml\n",
		"environments/dev/namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n",
		"environments/dev/settings.yaml":      settingsYAML(),
		"environments/dev/server.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: fraud-detector}
spec:
  selector: {matchLabels: {app: fraud-detector}}
  template:
    metadata: {labels: {app: fraud-detector}}
    spec: {containers: [{name: server, image: "registry.example/mlserver:1.6", ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: fraud-detector}
spec: {selector: {app: fraud-detector}, ports: [{port: 8080}]}
`,
		"environments/dev/pins.yaml": baselinePin("1.0.0"),
	}
}

func baselinePin(version string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: fraud-detector
  annotations: {ferry.dev/model-version: "` + version + `"}
spec:
  template:
    spec:
      containers: [{name: server, env: [{name: MODEL_VERSION, value: "` + version + `"}]}]
`
}

// applied waits until a Deployment in ns carries version, watching from rv.
func applied(ctx context.Context, c *testenv.Cluster, ns, rv, version string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := c.Client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, FieldSelector: "metadata.name=fraud-detector"})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if d, ok := ev.Object.(*appsv1.Deployment); ok && ev.Type == watch.Modified && d.Annotations["ferry.dev/model-version"] == version {
			return nil
		}
	}
	return fmt.Errorf("%s: version %s never applied", ns, version)
}

func resourceVersion(b *testing.B, c *testenv.Cluster, ns string) string {
	d, err := c.Client.AppsV1().Deployments(ns).Get(b.Context(), "fraud-detector", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return d.ResourceVersion
}

// BenchmarkPushToApplied measures, for an environment of 20 objects, the time
// from a push (already on the Git server) until a watch sees the new version
// applied: ferry serve signalled by a signed webhook, and the baseline script
// a user would run without ferry (git fetch + kustomize build + kubectl apply
// --server-side, with the CLIs the tools script builds), interleaved trial by
// trial on the same cluster and Git server. It reports p50 and p99 of each and
// how many times faster ferry is at p50.
// Run: go test ./bench -run '^$' -bench PushToApplied -benchtime 1x -timeout 30m
func BenchmarkPushToApplied(b *testing.B) {
	kustomize, err := testenv.Binary("kustomize")
	if err != nil {
		b.Fatal(err)
	}
	kubectl, err := testenv.Binary("kubectl")
	if err != nil {
		b.Fatal(err)
	}
	ferryBin := testenv.BuildFerry(b)
	cluster := testenv.NewCluster(b)
	srv := testenv.NewGitServer(b, testenv.GitServerOptions{})

	// The ferry repository: a Model pinned in environments/dev plus settings.
	srv.CreateRepo(b, "ferry")
	fwt := srv.Clone(b, "ferry")
	files := testenv.ModelRepo("bench-ferry", "dev")
	files["environments/dev/kustomization.yaml"] = "namespace: bench-ferry-dev\nresources: [namespace.yaml, settings.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n"
	files["environments/dev/settings.yaml"] = settingsYAML()
	fwt.WriteAll(b, files)
	fwt.Commit(b, "ferry repo")
	fwt.Push(b)

	// The baseline repository and the clone its script works in.
	srv.CreateRepo(b, "baseline")
	bwt := srv.Clone(b, "baseline")
	bwt.WriteAll(b, baselineRepo("bench-base-dev"))
	bwt.Commit(b, "baseline repo")
	bwt.Push(b)
	clone := b.TempDir()
	if _, err := testenv.Git("", "clone", "-q", srv.URL+"/baseline.git", clone); err != nil {
		b.Fatal(err)
	}
	script := fmt.Sprintf("set -e; git -C %[1]s fetch -q origin main; git -C %[1]s reset -q --hard origin/main; %[2]s build %[1]s/environments/dev | %[3]s --kubeconfig %[4]s apply --server-side --field-manager baseline -f - >/dev/null",
		clone, kustomize, kubectl, cluster.Kubeconfig)
	baseline := func() {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("baseline: %v\n%s", err, out)
		}
	}
	baseline()

	config := filepath.Join(b.TempDir(), "ferry.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(listenConfig+`resync: "@every 1h"
dataDir: %q
webhook: {secretEnv: BENCH_WEBHOOK_SECRET}
repositories:
  - name: models
    url: %s/ferry.git
    allowLocal: true
    github: {owner: acme, repo: models}
    environments:
      - {name: dev, path: environments/dev, cluster: {kubeconfig: %q}}
`, b.TempDir(), srv.URL, cluster.Kubeconfig)), 0o600); err != nil {
		b.Fatal(err)
	}
	ferry := testenv.StartFerry(b, ferryBin, config, []string{"BENCH_WEBHOOK_SECRET=" + hookSecret}, 2*time.Minute)
	healthy(b, ferry, 1, 2*time.Minute)

	webhook := func(sha string) {
		body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"acme/models"}}`, sha))
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

	for b.Loop() {
		var ferryLat, baseLat []time.Duration
		for i := range trials(b) {
			version := fmt.Sprintf("1.%d.%d", i+1, time.Now().UnixNano()%1000)

			fwt.Write(b, "environments/dev/models.yaml", testenv.ModelPin(version))
			sha := fwt.Commit(b, "bump "+version)
			fwt.Push(b)
			rv := resourceVersion(b, cluster, "bench-ferry-dev")
			start := time.Now()
			webhook(sha)
			if err := applied(b.Context(), cluster, "bench-ferry-dev", rv, version); err != nil {
				b.Fatal(err)
			}
			ferryLat = append(ferryLat, time.Since(start))

			bwt.Write(b, "environments/dev/pins.yaml", baselinePin(version))
			bwt.Commit(b, "bump "+version)
			bwt.Push(b)
			rv = resourceVersion(b, cluster, "bench-base-dev")
			start = time.Now()
			baseline()
			if err := applied(b.Context(), cluster, "bench-base-dev", rv, version); err != nil {
				b.Fatal(err)
			}
			baseLat = append(baseLat, time.Since(start))
		}
		fp50, fp99 := percentiles(ferryLat)
		bp50, bp99 := percentiles(baseLat)
		b.ReportMetric(ms(fp50), "ferry-p50-ms")
		b.ReportMetric(ms(fp99), "ferry-p99-ms")
		b.ReportMetric(ms(bp50), "baseline-p50-ms")
		b.ReportMetric(ms(bp99), "baseline-p99-ms")
		b.ReportMetric(float64(bp50)/float64(fp50), "speedup-p50-x")
		if os.Getenv("BENCH_SHOW_LOG") != "" {
			b.Log(ferry.Tail(12))
		}
	}
}

// trials is how many pushes a run measures: 100, or BENCH_TRIALS for a
// quick look.
func trials(b *testing.B) int {
	n := 100
	if v := os.Getenv("BENCH_TRIALS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("BENCH_TRIALS=%q: want a positive number", v)
		}
	}
	return n
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
