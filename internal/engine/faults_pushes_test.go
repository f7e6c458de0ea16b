package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/faulttest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// counterSetting is an environment's settings.yaml: one ConfigMap whose value
// says which push it came from.
func counterSetting(n int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pushes}\ndata: {push: \"%d\"}\n", n)
}

// TestAThousandPushesInTenSecondsEndEachEnvironmentAtItsLastCommit publishes
// 1,000 pushes in 10 s across 20 repositories (50 each: every 200 ms, one
// to each), each followed by the webhook's Notify. A push here is the
// server's branch moving to a commit uploaded beforehand (ImportCommits,
// MoveBranch): 1,000 `git push` processes would take this 2-core machine far
// past 10 s, and what ferry sees — a branch that moves under it while it
// fetches — is the same.
func TestAThousandPushesInTenSecondsEndEachEnvironmentAtItsLastCommit(t *testing.T) {
	const (
		repos  = 20
		pushes = 50 // per repository
		every  = 10 * time.Millisecond
	)
	faulttest.CheckLeaks(t)
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	src, err := source.New(source.Options{DataDir: t.TempDir(), Author: object.Signature{Name: "Ferry", Email: "ferry@example.com"}})
	require.NoError(t, err)
	applier, err := apply.New(apply.Options{Config: cluster.Config})
	require.NoError(t, err)
	t.Cleanup(applier.Stop)
	renderer, err := render.New(render.Options{})
	require.NoError(t, err)

	run := harnessSeq.Add(1)
	names := make([]string, repos)
	chains := make([][]string, repos) // chains[r][k]: the commit of push k (0: the first commit)
	var specs []Repository
	for r := range repos {
		names[r] = fmt.Sprintf("burst-%d-%02d", run, r)
		prefix := fmt.Sprintf("burst-%d-%d-%02d", os.Getpid()%10000, run, r)
		srv.CreateRepo(t, names[r])
		wt := srv.Clone(t, names[r])
		files := testenv.ModelRepo(prefix, "dev")
		files["environments/dev/kustomization.yaml"] = "namespace: " + prefix + "-dev\nresources: [namespace.yaml, settings.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n"
		files["environments/dev/settings.yaml"] = counterSetting(0)
		wt.WriteAll(t, files)
		first := wt.Commit(t, "models")
		wt.Push(t)
		edits := make([]map[string]string, pushes)
		for k := range edits {
			edits[k] = map[string]string{"environments/dev/settings.yaml": counterSetting(k + 1)}
		}
		shas, err := srv.ImportCommits(names[r], first, edits)
		require.NoError(t, err)
		chains[r] = append([]string{first}, shas...)

		repo, err := src.Open(source.RepoOptions{Name: names[r], URL: srv.URL + "/" + names[r] + ".git", Branch: "main", AllowLocal: true})
		require.NoError(t, err)
		specs = append(specs, Repository{Name: names[r], Source: repo, Environments: []Environment{{Name: "dev", Path: "environments/dev", Applier: applier}}})
		t.Cleanup(func() {
			cluster.Client.CoreV1().Namespaces().Delete(context.Background(), prefix+"-dev", metav1.DeleteOptions{})
		})
	}

	reg := prometheus.NewRegistry()
	eng, err := New(Options{
		Repositories: specs, Renderer: renderer, HealthTimeout: time.Minute, ShutdownGrace: 2 * time.Second,
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	require.NoError(t, err)
	h := &harness{t: t, eng: eng, reg: reg}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	status := func(repo string) Status {
		for _, s := range eng.Status() {
			if s.Repository == repo {
				return s
			}
		}
		t.Fatalf("no status for %s", repo)
		return Status{}
	}
	settledAt := func(repo, rev string, within time.Duration) {
		t.Helper()
		var last Status
		err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, within, true, func(context.Context) (bool, error) {
			last = status(repo)
			return idleAt(rev)(last), nil
		})
		require.NoError(t, err, "%s/dev Idle and Healthy at %s within %s; last status: %+v", repo, rev, within, last)
	}
	for r, name := range names {
		settledAt(name, chains[r][0], time.Minute)
	}
	fetchesBefore := make([]float64, repos)
	reconcilesBefore := make([]float64, repos)
	for r, name := range names {
		fetchesBefore[r] = h.counter("ferry_git_fetch_duration_seconds", "repository", name)
		reconcilesBefore[r] = h.counter("ferry_reconcile_total", "repository", name)
	}

	// Every record the environments' histories show while the pushes land:
	// the history keeps the last 10, so it is read every 5 ms and the new
	// records appended in the order the history holds them.
	records := make([][]Record, repos)
	seen := make([]map[string]bool, repos)
	for r := range seen {
		seen[r] = map[string]bool{}
	}
	collect := func() {
		for r, name := range names {
			for _, rec := range status(name).History {
				if id := rec.Revision + rec.Started.String(); !seen[r][id] {
					seen[r][id] = true
					records[r] = append(records[r], rec)
				}
			}
		}
	}
	stopWatching := make(chan struct{})
	var watching sync.WaitGroup
	watching.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			collect()
			select {
			case <-stopWatching:
				return
			case <-tick.C:
			}
		}
	})

	// Round k publishes push k of every repository at start + (k-1)×200 ms
	// (at once when behind): a push every 10 ms on average, 1,000 in 10 s,
	// however long one takes to publish.
	start := time.Now()
	pace := time.NewTimer(0)
	<-pace.C
	for k := 1; k <= pushes; k++ {
		if d := time.Until(start.Add(time.Duration(k-1) * repos * every)); d > 0 {
			pace.Reset(d)
			<-pace.C
		}
		for r, name := range names {
			require.NoError(t, srv.MoveBranch(name, "main", chains[r][k]))
			require.True(t, eng.Notify(name))
		}
	}
	pace.Stop()
	t.Logf("%d pushes published in %s", repos*pushes, time.Since(start).Round(time.Millisecond))

	for r, name := range names {
		settledAt(name, chains[r][pushes], 2*time.Minute)
	}
	close(stopWatching)
	watching.Wait()
	collect() // the records of the last reconciles, written as they settled

	index := make([]map[string]int, repos)
	totalFetches, totalReconciles := 0.0, 0.0
	for r, name := range names {
		index[r] = map[string]int{}
		for k, sha := range chains[r] {
			index[r][sha] = k
		}
		fetches := h.counter("ferry_git_fetch_duration_seconds", "repository", name) - fetchesBefore[r]
		reconciles := h.counter("ferry_reconcile_total", "repository", name) - reconcilesBefore[r]
		totalFetches += fetches
		totalReconciles += reconciles
		assert.LessOrEqual(t, fetches, float64(pushes), "%s: no more fetches than pushes", name)

		// Observed records since the first push; the engine's counter says
		// none was missed.
		var since []Record
		for _, rec := range records[r] {
			if !rec.Started.Before(start) {
				since = append(since, rec)
			}
		}
		assert.Equal(t, reconciles, float64(len(since)), "%s: every reconcile the metrics count is in the observed history", name)
		last := 0
		for _, rec := range since {
			k, ok := index[r][rec.Revision]
			require.True(t, ok, "%s: a reconcile of %s, which was never pushed", name, rec.Revision)
			assert.GreaterOrEqual(t, k, last, "%s: push %d recorded after push %d, which superseded it", name, k, last)
			assert.Equal(t, "success", rec.Result, "%s: push %d: %s", name, k, rec.Error)
			last = max(last, k)
		}
		assert.Equal(t, pushes, last, "%s: the last record is the last push", name)

		s := status(name)
		assert.Equal(t, chains[r][pushes], s.Revision)
		assert.Equal(t, s.Head, s.Revision)
		faulttest.AssertOwnsExactlyWhatIsThere(t, cluster.Client, cluster.Config, name, "dev")
	}
	assert.Zero(t, h.counter("ferry_reconcile_total", "result", "failure"))
	t.Logf("%d fetches and %d reconciles for %d pushes", int(totalFetches), int(totalReconciles), repos*pushes)

	for r := range repos {
		prefix := fmt.Sprintf("burst-%d-%d-%02d", os.Getpid()%10000, run, r)
		cm, err := cluster.Client.CoreV1().ConfigMaps(prefix+"-dev").Get(t.Context(), "pushes", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(pushes), cm.Data["push"], "%s holds the last push", names[r])
	}
}
