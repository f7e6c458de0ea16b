package engine

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
)

// world is an engine over fakes: one repository with dev promoting into
// staging, each in a cluster of its own.
type world struct {
	t            *testing.T
	git          *fakeGit
	dev, staging *fakeCluster
	render       *fakeRenderer
	gh           *fakeGitHub
	eng          *Engine
	idle         bool // set by a mutate: the engine is built, not run (SyncOnce)
}

const first = "1111111111111111111111111111111111111111"

func newWorld(t *testing.T, mutate ...func(*world, *Options)) *world {
	t.Helper()
	w := &world{
		t:       t,
		git:     newFakeGit(t, first),
		dev:     &fakeCluster{},
		staging: &fakeCluster{},
		render:  &fakeRenderer{versions: map[string]string{"environments/dev": "1.5.0", "environments/staging": "1.4.0"}},
		gh:      &fakeGitHub{checks: map[string]string{}},
	}
	w.git.files["environments/staging/models.yaml"] = pinFile("1.4.0")
	opts := Options{
		Renderer: w.render, ChecksPoll: time.Hour, HealthTimeout: time.Minute, ShutdownGrace: time.Second,
		Repositories: []Repository{{
			Name: "models", Source: w.git, Branch: "main", GitHub: w.gh,
			Environments: []Environment{
				{Name: "dev", Path: "environments/dev", Applier: w.dev, PromoteTo: "staging"},
				{Name: "staging", Path: "environments/staging", Applier: w.staging},
			},
		}},
	}
	for _, m := range mutate {
		m(w, &opts)
	}
	var err error
	w.eng, err = New(opts)
	require.NoError(t, err)
	if w.idle {
		return w
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return w
}

func (w *world) status(env string) Status {
	for _, s := range w.eng.Status() {
		if s.Environment == env {
			return s
		}
	}
	w.t.Fatalf("no environment %s", env)
	return Status{}
}

// eventually waits, at most 20 seconds, until cond holds for env's status.
func (w *world) eventually(env string, cond func(Status) bool, what string) Status {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := w.status(env)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: %s; last status: %+v", env, what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func idleAtRev(rev string) func(Status) bool {
	return func(s Status) bool { return s.Phase == Idle && s.Revision == rev }
}

func TestTheStepsAfterHealthRunOncePerRevision(t *testing.T) {
	w := newWorld(t, func(w *world, _ *Options) { w.render.tests = true })
	s := w.eventually("dev", idleAtRev(first), "dev verified and promoted")
	require.Len(t, s.Promotions, 1)
	assert.Equal(t, Promotion{Model: "fraud-detector", Version: "1.5.0", To: "staging", Branch: "ferry/promote/fraud-detector/staging",
		Commit: "promotion-ferry/promote/fraud-detector/staging", PR: 1, Action: "created"}, s.Promotions[0])
	assert.Equal(t, first, s.Verified)
	assert.Equal(t, 1, w.dev.count("RunTests"))
	assert.Equal(t, 1, w.gh.count("EnsurePullRequest"))

	w.eng.Resync() // a drift check: render and apply again, nothing after health
	w.eventually("dev", func(Status) bool { return w.dev.count("Apply") == 2 }, "applied again")
	w.eventually("dev", idleAtRev(first), "idle again")
	assert.Equal(t, 1, w.dev.count("RunTests"), "no test runs twice for one revision")
	assert.Equal(t, 1, w.gh.count("EnsurePullRequest"), "no second promotion")
	assert.Equal(t, 1, w.git.count("Push"))
}

func TestADriftCheckWhoseListFoundEveryObjectReadyDoesNotWait(t *testing.T) {
	w := newWorld(t)
	w.eventually("dev", idleAtRev(first), "dev reconciled")
	require.Equal(t, 1, w.dev.count("Wait"))

	w.dev.mu.Lock()
	w.dev.listed = &apply.HealthReport{Objects: []apply.Health{{Status: apply.Current}}}
	w.dev.mu.Unlock()
	w.eng.Resync()
	w.eventually("dev", func(Status) bool { return w.dev.count("Apply") == 2 }, "applied again")
	s := w.eventually("dev", idleAtRev(first), "idle again")
	assert.Equal(t, HealthHealthy, s.Health)
	assert.Equal(t, 1, w.dev.count("Wait"), "the apply's LIST said every object is ready: no watch")

	w.dev.mu.Lock()
	w.dev.listed = &apply.HealthReport{Objects: []apply.Health{{Status: apply.InProgress}}}
	w.dev.mu.Unlock()
	w.eng.Resync()
	w.eventually("dev", func(Status) bool { return w.dev.count("Apply") == 3 }, "applied again")
	w.eventually("dev", idleAtRev(first), "idle again")
	assert.Equal(t, 2, w.dev.count("Wait"), "an object not ready is waited for")
}

func TestATransientPromotionFailureIsRetriedWithoutApplyingAgain(t *testing.T) {
	bad := &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}}, Message: "Bad Gateway"}
	w := newWorld(t, func(w *world, _ *Options) { w.gh.prErr = []error{bad, bad} })
	s := w.eventually("dev", idleAtRev(first), "promoted at last")
	assert.Equal(t, 3, w.gh.count("EnsurePullRequest"))
	assert.Equal(t, 1, w.dev.count("Apply"), "the retries did not render or apply again")
	assert.Empty(t, s.LastError)
	assert.Equal(t, promote.StateSuccess, w.gh.lastStatus("ferry/dev").State)
}

func TestAFailingTestStopsPromotionAndNamesTheTest(t *testing.T) {
	w := newWorld(t, func(w *world, _ *Options) { w.render.tests = true; w.dev.failTests = "smoke" })
	s := w.eventually("dev", func(s Status) bool { return s.Phase == Failed }, "the test failed")
	assert.Equal(t, StepTests, s.FailedStep)
	assert.Contains(t, s.LastError, "fraud-detector/smoke failed")
	assert.Equal(t, 0, w.gh.count("EnsurePullRequest"), "no promotion")
	assert.Equal(t, 0, w.git.count("Push"))
	w.eventually("dev", func(Status) bool { return w.gh.lastStatus("ferry/dev").State == promote.StateFailure }, "the commit status says so")
	assert.Contains(t, w.gh.lastStatus("ferry/dev").Description, "tests: test fraud-detector/smoke failed")

	w.eng.Resync() // the failure is kept, not run again
	w.eventually("dev", func(Status) bool { return w.dev.count("Apply") == 2 }, "applied again")
	s = w.eventually("dev", func(s Status) bool { return s.Phase == Failed }, "still failed")
	assert.Equal(t, StepTests, s.FailedStep)
	assert.Equal(t, 1, w.dev.count("RunTests"))
}

func TestPendingChecksWaitUntilACheckEventSaysGreen(t *testing.T) {
	w := newWorld(t, func(w *world, _ *Options) { w.render.checks = []string{"eval/accuracy"} })
	w.eventually("dev", func(s Status) bool { return s.Phase == Checking }, "waiting for the check")
	w.eventually("dev", func(Status) bool {
		s := w.gh.lastStatus("ferry/dev")
		return s.State == promote.StatePending && s.Description == "waiting for eval/accuracy: missing"
	}, "the commit status says what it waits for")
	assert.Equal(t, 0, w.gh.count("EnsurePullRequest"))

	w.gh.setCheck("eval/accuracy", promote.CheckSuccess)
	require.True(t, w.eng.NotifyChecks("models"))
	s := w.eventually("dev", idleAtRev(first), "promoted once green")
	assert.Equal(t, promote.Checks{{Name: "eval/accuracy", State: promote.CheckSuccess}}, s.Checks)
	assert.Equal(t, 1, w.gh.count("EnsurePullRequest"))
}

func TestAFailedCheckStopsPromotionNamingIt(t *testing.T) {
	w := newWorld(t, func(w *world, _ *Options) {
		w.render.checks = []string{"eval/accuracy"}
		w.gh.checks["eval/accuracy"] = promote.CheckFailure
	})
	s := w.eventually("dev", func(s Status) bool { return s.Phase == Failed }, "the check failed")
	assert.Equal(t, StepChecks, s.FailedStep)
	assert.Contains(t, s.LastError, "eval/accuracy: failure")
	assert.Equal(t, 0, w.gh.count("EnsurePullRequest"))
}

func TestANewerCommitSupersedesAPendingPipeline(t *testing.T) {
	gate := make(chan struct{})
	w := newWorld(t, func(w *world, _ *Options) { w.dev.gate = gate })
	w.eventually("dev", func(s Status) bool { return s.Phase == Waiting }, "dev waits for health")

	second := "2222222222222222222222222222222222222222"
	w.git.setHead(second, "environments/dev/models.yaml")
	w.render.set("environments/dev", "1.6.0")
	w.eng.Notify("models")
	w.eventually("dev", func(Status) bool { return w.dev.count("Apply") == 2 }, "the newer commit applied")
	close(gate)
	s := w.eventually("dev", idleAtRev(second), "the newer commit's outcome is the one recorded")
	require.Len(t, s.History, 1, "the superseded pipeline recorded nothing")
	assert.Equal(t, second, s.History[0].Revision)
	require.Len(t, s.Promotions, 1)
	assert.Equal(t, "1.6.0", s.Promotions[0].Version)
	w.eventually("dev", func(Status) bool {
		for _, st := range w.gh.statuses {
			if st.SHA == first && st.State == promote.StateError {
				return true
			}
		}
		return false
	}, "the superseded commit's pending status is closed")
}

func TestAnOlderCommitsPipelineNeverOverwritesANewerCommitsFailure(t *testing.T) {
	gate := make(chan struct{})
	w := newWorld(t, func(w *world, _ *Options) { w.dev.gate = gate })
	w.eventually("dev", func(s Status) bool { return s.Phase == Waiting }, "dev waits for health")

	broken := "4444444444444444444444444444444444444444"
	w.git.setHead(broken, "environments/dev/models.yaml")
	w.render.breakPath("environments/dev", errors.New("render environments/dev: models/nowhere: no such directory"))
	w.eng.Notify("models")
	w.eventually("dev", func(s Status) bool { return s.Phase == Failed }, "the broken commit reported")
	close(gate) // the older commit's wait ends, healthy
	w.eventually("staging", idleAtRev(broken), "staging moved on")
	w.eng.Resync()
	w.eventually("dev", func(Status) bool { return w.git.count("Head") >= 3 }, "a resync came and went")
	s := w.status("dev")
	assert.Equal(t, Failed, s.Phase)
	assert.Contains(t, s.LastError, "models/nowhere", "the older commit's outcome does not replace the newer one's")
	assert.Equal(t, 0, w.gh.count("EnsurePullRequest"), "nor does it promote")
}

func TestACommitTouchingNoInputCarriesAPendingPipelineForward(t *testing.T) {
	gate := make(chan struct{})
	w := newWorld(t, func(w *world, _ *Options) { w.dev.gate = gate })
	w.eventually("dev", func(s Status) bool { return s.Phase == Waiting }, "dev waits for health")
	w.eventually("staging", func(s Status) bool { return s.Phase == Idle && s.Revision == first }, "staging done")

	docs := "3333333333333333333333333333333333333333"
	w.git.setHead(docs, "README.md")
	w.eng.Notify("models")
	w.eventually("dev", func(s Status) bool { return s.Revision == docs }, "dev moved to the docs commit")
	close(gate)
	s := w.eventually("dev", func(s Status) bool { return s.Phase == Idle }, "the pipeline finished")
	assert.Equal(t, docs, s.Revision, "the older commit's pipeline does not set the environment back")
	assert.Equal(t, docs, s.Verified)
	assert.Equal(t, 1, w.dev.count("Apply"))
}

func TestBranchPromotionNeverCallsGitHub(t *testing.T) {
	w := newWorld(t, func(w *world, o *Options) {
		o.Repositories[0].Environments[0].Promotion = PromoteBranch
		o.Repositories[0].GitHub = nil
	})
	s := w.eventually("dev", idleAtRev(first), "promoted")
	require.Len(t, s.Promotions, 1)
	assert.Equal(t, "pushed", s.Promotions[0].Action)
	assert.Zero(t, s.Promotions[0].PR)
	assert.Equal(t, []string{"ferry/promote/fraud-detector/staging"}, w.git.pushed)
	assert.Equal(t, 0, w.gh.count("SetStatus")+w.gh.count("EnsurePullRequest")+w.gh.count("RequiredChecks"))
}

func TestAModelTheTargetDoesNotDeclareIsReportedNotInvented(t *testing.T) {
	w := newWorld(t, func(w *world, _ *Options) {
		w.git.files["environments/staging/models.yaml"] = "# nothing pinned here\n"
	})
	s := w.eventually("dev", idleAtRev(first), "done")
	require.Len(t, s.Promotions, 1)
	assert.Equal(t, "skipped", s.Promotions[0].Action)
	assert.Contains(t, s.Promotions[0].Skipped, "environments/staging/models.yaml has no Model patch for fraud-detector")
	assert.Equal(t, 0, w.git.count("Push"))
}

func TestASubscriberHearsOfEveryChangedEnvironmentOnce(t *testing.T) {
	gate := make(chan struct{})
	w := newWorld(t, func(w *world, _ *Options) { w.dev.gate = gate })
	sub := w.eng.Subscribe()
	defer sub.Close()
	w.eventually("dev", func(s Status) bool { return s.Phase == Waiting }, "dev waits for health")
	select {
	case <-sub.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no change was signalled")
	}
	changed := sub.Take()
	assert.Contains(t, changed, EnvironmentKey{"models", "dev"})
	assert.Empty(t, sub.Take(), "taken once")

	close(gate)
	w.eventually("dev", idleAtRev(first), "dev done")
	deadline := time.After(10 * time.Second)
	for !contains(sub.Take(), EnvironmentKey{"models", "dev"}) {
		select {
		case <-sub.Ready():
		case <-deadline:
			t.Fatal("the end of dev's pipeline was not signalled")
		}
	}
	s, ok := w.eng.StatusOf(EnvironmentKey{"models", "dev"})
	require.True(t, ok)
	assert.Equal(t, Idle, s.Phase)
}

func contains(keys []EnvironmentKey, k EnvironmentKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func TestAConfiguredSecretNeverShowsInAStatusACommitStatusOrTheLog(t *testing.T) {
	const canary = "ghs_STATUS_CANARY_42"
	var logs testenv.LogBuffer
	w := newWorld(t, func(w *world, o *Options) {
		o.Secrets = []string{canary}
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		w.render.breakPath("environments/dev", errors.New("render environments/dev: a URL with "+canary+" in it was refused"))
	})
	s := w.eventually("dev", func(s Status) bool { return s.Phase == Failed }, "dev failed")
	assert.Contains(t, s.LastError, "a URL with [redacted] in it")
	assert.NotContains(t, s.LastError, canary)
	require.NotEmpty(t, s.History)
	assert.NotContains(t, s.History[len(s.History)-1].Error, canary)
	w.eventually("dev", func(Status) bool { return w.gh.lastStatus("ferry/dev").State == promote.StateFailure }, "the commit status")
	assert.NotContains(t, w.gh.lastStatus("ferry/dev").Description, canary)
	assert.Contains(t, logs.String(), "[redacted]")
	assert.NotContains(t, logs.String(), canary)
}

func TestAPushIsAppliedWhileTheMainQueueIsBusy(t *testing.T) {
	gate := make(chan struct{})
	w := newWorld(t, func(w *world, o *Options) { o.Workers = 1 })
	w.eventually("dev", idleAtRev(first), "dev reconciled")
	w.eventually("staging", func(s Status) bool { return s.Phase == Idle }, "staging reconciled")

	// A resync's drift check of staging holds the only main worker.
	w.staging.mu.Lock()
	w.staging.applyGate = gate
	w.staging.mu.Unlock()
	defer close(gate)
	applies := w.staging.count("Apply")
	w.eng.Resync()
	require.Eventually(t, func() bool { return w.staging.count("Apply") > applies }, 10*time.Second, 5*time.Millisecond, "staging's drift check is stuck applying")

	const second = "2222222222222222222222222222222222222222"
	w.git.setHead(second, "environments/dev/models.yaml")
	require.True(t, w.eng.Notify("models"))
	w.eventually("dev", idleAtRev(second), "the push is applied by the urgent lane, the main one still stuck")
}
