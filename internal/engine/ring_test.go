package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRing says what a test wants of ownership.
type fakeRing struct {
	mu      sync.Mutex
	owned   bool
	wait    time.Duration // after, while owned
	since   time.Time     // when the wait started
	fenced  chan struct{}
	changed chan struct{}
}

func newFakeRing(owned bool, wait time.Duration) *fakeRing {
	return &fakeRing{owned: owned, wait: wait, since: time.Now(), fenced: make(chan struct{}), changed: make(chan struct{}, 1)}
}

func (r *fakeRing) May(string) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.owned {
		return false, 0
	}
	return true, max(r.since.Add(r.wait).Sub(time.Now()), 0)
}

func (r *fakeRing) Fence(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-r.fenced:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx
}

func (r *fakeRing) Changed() <-chan struct{} { return r.changed }

func (r *fakeRing) own(owned bool) {
	r.mu.Lock()
	r.owned, r.since = owned, time.Now()
	r.mu.Unlock()
	r.changed <- struct{}{}
}

func TestARepositoryAnotherReplicaOwnsIsNeverTouched(t *testing.T) {
	rg := newFakeRing(false, 0)
	w := newWorld(t, func(_ *world, o *Options) { o.Ring = rg })
	w.eng.Notify("models")
	w.eng.Resync()
	time.Sleep(200 * time.Millisecond) // give a wrong engine the chance to work
	assert.Zero(t, w.git.count("Head"), "no fetch")
	assert.Zero(t, w.dev.count("Apply"), "no apply")

	rg.own(true) // the ring changes: this replica owns it now
	w.eventually("dev", idleAtRev(first), "reconciled once owned")
}

func TestATakenOverRepositoryWaitsBeforeItsFirstMutation(t *testing.T) {
	rg := newFakeRing(true, 700*time.Millisecond)
	start := time.Now()
	w := newWorld(t, func(_ *world, o *Options) { o.Ring = rg })
	w.eventually("dev", func(Status) bool { return w.dev.count("Apply") > 0 }, "applied")
	assert.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond, "not before the wait ended")
}

func TestAFencedReplicaStopsWhatItIsDoing(t *testing.T) {
	rg := newFakeRing(true, 0)
	gate := make(chan struct{})
	w := newWorld(t, func(w *world, o *Options) { o.Ring = rg; w.dev.gate = gate })
	w.eventually("dev", func(s Status) bool { return s.Phase == Waiting }, "waiting for health")
	close(rg.fenced)
	require.Eventually(t, func() bool {
		w.eng.pipelines.Wait()
		return true
	}, 10*time.Second, 10*time.Millisecond, "the pipeline ended under the fence")
	assert.Zero(t, w.dev.count("RunTests"), "nothing after the fence")
	assert.Zero(t, w.gh.count("EnsurePullRequest"))
}
