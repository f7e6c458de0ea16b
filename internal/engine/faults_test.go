package engine

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/faulttest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/source"
)

// The fault-injection suite: each test breaks a part ferry depends on in the
// middle of its work, mends it, and asserts the end state — every
// environment at Git's head and healthy, each inventory equal to the
// cluster's objects labelled as its own (no orphan), foreign objects kept,
// no goroutine left once the engine stopped. The SIGKILL of a ferry process
// is in cmd/ferry (faults_test.go).

// withSettings is env's kustomization with settings.yaml added to its resources.
func (h *harness) withSettings(env string) string {
	return "namespace: " + h.prefix + "-" + env + "\nresources: [namespace.yaml, settings.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n"
}

// gitHead is the commit main points at on the Git server.
func (h *harness) gitHead() string {
	h.t.Helper()
	head, err := testenv.Git(h.srv.RepoDir("models"), "rev-parse", "refs/heads/main")
	require.NoError(h.t, err)
	return head
}

// faultOptions are the engine options every fault test shares: a short
// shutdown grace, so a stopped engine does not wait on a health wait that
// the fault made long.
func faultOptions(o *Options) {
	o.ShutdownGrace = 2 * time.Second
}

// onCluster points every environment at an applier for cfg, with wrap
// between the applier and the API server.
func onCluster(t *testing.T, cfg *rest.Config, wrap func(http.RoundTripper) http.RoundTripper) func(*Options) {
	return func(o *Options) {
		cfg := rest.CopyConfig(cfg)
		cfg.WrapTransport = wrap
		a, err := apply.New(apply.Options{Config: cfg})
		require.NoError(t, err)
		t.Cleanup(a.Stop)
		for i := range o.Repositories[0].Environments {
			o.Repositories[0].Environments[i].Applier = a
		}
	}
}

// assertSettled asserts the end state of every environment of the harness
// in cluster c: Idle and Healthy at Git's head, and its inventory equal to
// the objects labelled as its own.
func (h *harness) assertSettled(c *testenv.Cluster) {
	h.t.Helper()
	head := h.gitHead()
	for _, env := range envNames {
		s := h.eventually(env, idleAt(head), "settled at Git's head")
		assert.Empty(h.t, s.LastError, env)
		faulttest.AssertOwnsExactlyWhatIsThere(h.t, c.Client, c.Config, h.repo, env)
	}
}

func TestAnAPIServerStoppedInTheMiddleOfAnApplyIsWaitedOutAndTheApplyCompleted(t *testing.T) {
	faulttest.CheckLeaks(t)
	// A cluster of its own: its API server goes away.
	c := testenv.NewCluster(t)
	var gate atomic.Pointer[faulttest.Gate]
	gated := func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(r *http.Request) (*http.Response, error) {
			if g := gate.Load(); g != nil {
				return g.Wrap(rt).RoundTrip(r)
			}
			return rt.RoundTrip(r)
		})
	}
	h := newHarness(t)
	h.start(faultOptions, onCluster(t, c.Config, gated))
	first := h.gitHead()
	for _, env := range envNames {
		h.eventually(env, idleAt(first), "first reconcile")
	}
	foreign := faulttest.PlantForeign(t, c.Client, h.prefix+"-dev", h.repo, "dev")

	// 200 ConfigMaps; the apply is stopped after 60 of them, the API server
	// killed under it, and the requests it had in flight let go against
	// the dead server.
	g := faulttest.NewGate(60, faulttest.Applies("configmaps", "setting-"))
	gate.Store(g)
	head := h.commit(map[string]string{
		"environments/dev/kustomization.yaml": h.withSettings("dev"),
		"environments/dev/settings.yaml":      testenv.ConfigMaps("setting", 200),
	}, "200 settings")
	require.True(t, h.eng.Notify(h.repo))
	waitFor(t, g.Shut(), "60 of the 200 ConfigMaps applied")
	require.True(t, g.WaitHolding(t.Context(), 1), "the apply goes on past 60 objects")
	require.NoError(t, c.StopAPIServer(t.Context()))
	g.Open()
	s := h.eventually("dev", func(s Status) bool { return s.Phase == Failed && s.FailedStep == StepApply }, "the apply failed while the API server was down")
	t.Logf("with the API server down: %s", s.LastError)
	require.NoError(t, c.StartAPIServer(t.Context()))

	h.assertSettled(c)
	s = h.status("dev")
	assert.Equal(t, head, s.Revision)
	failed := false
	for _, r := range s.History {
		failed = failed || (r.Revision == head && r.Result == "failure")
	}
	assert.True(t, failed, "the outage shows in dev's history: %+v", s.History)
	list, err := c.Client.CoreV1().ConfigMaps(h.prefix+"-dev").List(t.Context(), metav1.ListOptions{LabelSelector: apply.LabelEnvironment + "=dev"})
	require.NoError(t, err)
	assert.Len(t, list.Items, 200, "every ConfigMap applied once the API server is back")
	foreign.AssertKept(t)
}

func TestAGitServerThatFailsHangsAndIsForcePushedIsFollowedToItsHead(t *testing.T) {
	faulttest.CheckLeaks(t)
	h := newHarness(t)
	faulty := h.srv.Faulty(t)
	h.start(faultOptions, func(o *Options) {
		o.FetchTimeout = 2 * time.Second
		src, err := source.New(source.Options{DataDir: t.TempDir(), Author: object.Signature{Name: "Ferry", Email: "ferry@example.com"}})
		require.NoError(t, err)
		repo, err := src.Open(source.RepoOptions{Name: h.repo, URL: faulty.URL + "/models.git", Branch: "main", AllowLocal: true})
		require.NoError(t, err)
		o.Repositories[0].Source = repo
	})
	first := h.gitHead()
	for _, env := range envNames {
		h.eventually(env, idleAt(first), "first reconcile")
	}
	foreign := faulttest.PlantForeign(t, cluster.Client, h.prefix+"-dev", h.repo, "dev")

	// A commit that adds an object; the Git server answers 500 to every request.
	faulty.Set(testenv.GitError)
	lost := h.commit(map[string]string{
		"environments/dev/models.yaml":        pin("1.1.0"),
		"environments/dev/kustomization.yaml": h.withSettings("dev"),
		"environments/dev/settings.yaml":      testenv.ConfigMaps("lost", 1),
	}, "bump dev, add a setting")
	require.True(t, h.eng.Notify(h.repo))
	s := h.eventually("dev", func(s Status) bool { return strings.Contains(s.LastError, "500") }, "the 500 shows")
	assert.Contains(t, s.LastError, "fetch "+h.repo)
	assert.Equal(t, first, s.Revision)

	// Then it hangs: each fetch is cut at FetchTimeout.
	faulty.Set(testenv.GitHang)
	h.eventually("dev", func(s Status) bool { return faulty.Hung() > 0 && strings.Contains(s.LastError, "deadline exceeded") }, "a hung fetch gave up")
	assert.Equal(t, first, h.status("dev").Revision)

	// Back: the retries reach the commit.
	faulty.Set(testenv.GitUp)
	h.eventually("dev", idleAt(lost), "the commit applied once the server is back")
	assert.Equal(t, "1.1.0", h.deployment("dev").Annotations["ferry.dev/model-version"])
	_, err := cluster.Client.CoreV1().ConfigMaps(h.prefix+"-dev").Get(t.Context(), "lost-000", metav1.GetOptions{})
	require.NoError(t, err)

	// History rewritten under ferry: the commit is gone from main, and with
	// it the setting it added; main moves to a commit ferry never saw.
	h.wt.Reset(t, first)
	h.wt.WriteAll(t, map[string]string{"environments/dev/models.yaml": pin("1.2.0"), "environments/staging/models.yaml": pin("1.3.0")})
	rewritten := h.wt.Commit(t, "bump dev and staging")
	h.wt.ForcePush(t)
	require.True(t, h.eng.Notify(h.repo))
	h.assertSettled(cluster)
	assert.Equal(t, rewritten, h.status("dev").Revision)
	assert.Equal(t, "1.2.0", h.deployment("dev").Annotations["ferry.dev/model-version"])
	assert.Equal(t, "1.3.0", h.deployment("staging").Annotations["ferry.dev/model-version"])
	assert.Equal(t, "1.0.0", h.deployment("prod").Annotations["ferry.dev/model-version"])
	_, err = cluster.Client.CoreV1().ConfigMaps(h.prefix+"-dev").Get(t.Context(), "lost-000", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the setting of the lost commit is pruned: %v", err)
	assert.Positive(t, faulty.Errors())
	foreign.AssertKept(t)
}

func TestAThrottlingAPIServerIsWaitedOut(t *testing.T) {
	faulttest.CheckLeaks(t)
	h := newHarness(t)
	throttle := &faulttest.Throttle{RetryAfter: time.Second}
	h.start(faultOptions, onCluster(t, cluster.Config, throttle.Wrap))
	first := h.gitHead()
	for _, env := range envNames {
		h.eventually(env, idleAt(first), "first reconcile")
	}
	foreign := faulttest.PlantForeign(t, cluster.Client, h.prefix+"-staging", h.repo, "staging")

	throttle.Set(true)
	head := h.commit(map[string]string{
		"environments/dev/models.yaml":            pin("1.1.0"),
		"environments/staging/kustomization.yaml": h.withSettings("staging"),
		"environments/staging/settings.yaml":      testenv.ConfigMaps("setting", 20),
	}, "bump dev, 20 settings in staging")
	require.True(t, h.eng.Notify(h.repo))
	h.eventually("dev", func(Status) bool { return throttle.Throttled() > 0 }, "the apply meets the throttle")
	// The fault lasts 10 s (the scenario), whatever ferry does meanwhile.
	throttled := time.NewTimer(10 * time.Second)
	select {
	case <-throttled.C:
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	for _, env := range []string{"dev", "staging"} {
		assert.NotEqual(t, head, h.status(env).Revision, "%s cannot have applied through a throttle that refused every request", env)
	}
	throttle.Set(false)

	h.assertSettled(cluster)
	assert.Equal(t, "1.1.0", h.deployment("dev").Annotations["ferry.dev/model-version"])
	t.Logf("%d requests answered 429", throttle.Throttled())
	foreign.AssertKept(t)
}

// waitFor waits for ch to close, for at most a minute.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("waited a minute for: %s", what)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
