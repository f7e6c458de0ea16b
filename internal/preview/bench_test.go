package preview

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/webhooks"
)

// BenchmarkPullRequestToComment measures the preview budget (DESIGN.md
// section 7): from a signed pull_request webhook received by the real
// receiver to the preview comment, carrying the pushed version, on the test
// GitHub server. Three environments of 100 objects each (a Namespace, a
// Model expanded into a Deployment and a Service, 97 ConfigMaps); each trial
// pushes a new version pin into dev on the pull request's head, untimed,
// then sends the webhook. The Pool runs with its defaults, its 200 ms
// coalescing delay included. The renderer starts cold; steady state is the
// engine's: staging and prod are cache hits at the merge base, dev is
// rendered at both ends.
//
// The baseline, interleaved trial by trial, is what a CI job does with the
// same two commits already checked out: `kustomize build` of both refs for
// each of the 3 environments, and `diff -u` of each pair.
//
//	go test ./internal/preview -run '^$' -bench PullRequestToComment -benchtime 1x -timeout 30m
func BenchmarkPullRequestToComment(b *testing.B) {
	const trials = 50
	kustomize, err := testenv.Binary("kustomize")
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{}
	for _, env := range environments {
		var cms strings.Builder
		for i := range 97 {
			fmt.Fprintf(&cms, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings-%02d}\ndata: {threshold: \"0.%02d\", region: eu-west-1, owner: ml-platform}\n", i, i)
		}
		files["environments/"+env+"/settings.yaml"] = cms.String()
		files["environments/"+env+"/kustomization.yaml"] = "namespace: " + nsPrefix + "-" + env + "\nresources: [namespace.yaml, ../../models/fraud-detector, settings.yaml]\npatches:\n- path: models.yaml\n"
	}
	f := newBenchFixture(b, files)
	secret := []byte("bench-webhook-secret")
	hook, err := webhooks.NewGitHub(webhooks.Options{
		Secrets:      [][]byte{secret},
		Repositories: []webhooks.Repository{{Name: "models", FullName: "acme/models", Branch: "main"}},
		Sink: func(ev webhooks.Event) bool {
			pr := ev.PullRequest
			if ev.Kind != webhooks.KindPullRequest {
				return true
			}
			return f.pool.Notify(Event{Repository: ev.Repository, Number: pr.Number, Action: pr.Action, BaseRef: pr.BaseRef, HeadSHA: pr.HeadSHA})
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	receiver := httptest.NewServer(hook)
	b.Cleanup(receiver.Close)
	n := f.gh.OpenPR("feature", "main", "bench", "")

	send := func(version, head string) {
		body, _ := json.Marshal(map[string]any{
			"action": "synchronize", "number": n,
			"repository": map[string]any{"full_name": "acme/models"},
			"pull_request": map[string]any{
				"number": n,
				"head":   map[string]any{"ref": "feature", "sha": head, "repo": map[string]any{"full_name": "acme/models"}},
				"base":   map[string]any{"ref": "main", "sha": f.main, "repo": map[string]any{"full_name": "acme/models"}},
			},
		})
		req, _ := http.NewRequest(http.MethodPost, receiver.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", "bench-"+version)
		req.Header.Set("X-Hub-Signature-256", webhooks.Sign(secret, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("webhook for %s: %v %v", version, resp, err)
		}
		resp.Body.Close()
	}
	trial := func(i int) (ferry, baseline time.Duration) {
		version := fmt.Sprintf("2.%d.%d", i, time.Now().UnixNano()%1000)
		head := f.push(n, pin(version))
		start := time.Now()
		send(version, head)
		want := "→ **<code>" + version + "</code>**"
		deadline := start.Add(time.Minute)
		for {
			if c := f.gh.Comments(n); len(c) == 1 && strings.Contains(c[0].Body, want) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("trial %d: no comment with %s within a minute", i, version)
			}
			time.Sleep(time.Millisecond)
		}
		ferry = time.Since(start)
		return ferry, kustomizeAndDiff(b, kustomize, f, f.main, head)
	}

	for range b.N {
		trial(-1) // the first clone, cold caches
		var ferry, baseline []time.Duration
		for i := range trials {
			fd, bd := trial(i)
			ferry, baseline = append(ferry, fd), append(baseline, bd)
		}
		p50, p99 := percentile(ferry, 50), percentile(ferry, 99)
		b.ReportMetric(float64(p50.Milliseconds()), "webhook-to-comment-p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), "webhook-to-comment-p99-ms")
		b.ReportMetric(float64(percentile(baseline, 50).Milliseconds()), "kustomize-and-diff-p50-ms")
		b.ReportMetric(percentile(baseline, 50).Seconds()/p50.Seconds(), "x-baseline-over-ferry-p50")
	}
}

// newBenchFixture is newFixture for a benchmark, with a Pool at its defaults.
func newBenchFixture(b *testing.B, files map[string]string) *fixture {
	f := newFixture(b, files)
	f.start(Options{Delay: 200 * time.Millisecond})
	return f
}

// kustomizeAndDiff is the baseline: both commits checked out (untimed),
// then kustomize build of each environment at both and diff -u of each pair.
func kustomizeAndDiff(b *testing.B, kustomize string, f *fixture, base, head string) time.Duration {
	dirs := map[string]string{}
	for _, sha := range []string{base, head} {
		dir := filepath.Join(b.TempDir(), sha)
		if _, err := testenv.Git(f.wt.Dir, "worktree", "add", "-q", "--detach", dir, sha); err != nil {
			b.Fatal(err)
		}
		dirs[sha] = dir
	}
	defer func() {
		for _, dir := range dirs {
			testenv.Git(f.wt.Dir, "worktree", "remove", "--force", dir)
		}
	}()
	start := time.Now()
	out := b.TempDir()
	for _, env := range environments {
		for _, sha := range []string{base, head} {
			cmd := exec.CommandContext(context.Background(), kustomize, "build", filepath.Join(dirs[sha], "environments", env), "-o", filepath.Join(out, env+"-"+sha+".yaml"))
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("kustomize build %s@%s: %v\n%s", env, sha, err, msg)
			}
		}
		cmd := exec.Command("diff", "-u", filepath.Join(out, env+"-"+base+".yaml"), filepath.Join(out, env+"-"+head+".yaml"))
		if msg, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
			b.Fatalf("diff %s: %v\n%s", env, err, msg)
		}
	}
	elapsed := time.Since(start)
	os.RemoveAll(out)
	return elapsed
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}
