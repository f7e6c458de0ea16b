package engine

import (
	"context"
	"sync"
	"sync/atomic"
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
	live    atomic.Int64 // fences whose context has not ended
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
	r.live.Add(1)
	go func() {
		defer r.live.Add(-1)
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

func TestEveryFenceEndsWithItsWorkItem(t *testing.T) {
	rg := newFakeRing(true, 0)
	w := newWorld(t, func(_ *world, o *Options) { o.Ring = rg })
	w.eventually("dev", idleAtRev(first), "reconciled")
	for i := range 3 {
		w.eng.Resync()
		w.eventually("dev", func(Status) bool { return w.dev.count("Apply") == i+2 }, "a drift check")
	}
	w.eventually("dev", idleAtRev(first), "idle again")
	require.Eventually(t, func() bool { return rg.live.Load() == 0 }, 10*time.Second, 10*time.Millisecond,
		"a fence derived for a work item is released when the item is done, or a replica leaks one per item (%d live)", rg.live.Load())
}

func TestARepositoryWonBackIsReadAgainFromTheCluster(t *testing.T) {
	rg := newFakeRing(true, 0)
	w := newWorld(t, func(_ *world, o *Options) { o.Ring = rg })
	w.eventually("dev", idleAtRev(first), "reconciled")
	applies, forgets := w.dev.count("Apply"), w.dev.count("Forget")

	rg.own(false)
	require.Eventually(t, func() bool { return w.dev.count("Forget") > forgets }, 10*time.Second, 10*time.Millisecond, "lost: forgotten")
	// Meanwhile another replica applied another commit to dev.
	w.dev.mu.Lock()
	w.dev.revision = "2222222222222222222222222222222222222222"
	w.dev.mu.Unlock()

	rg.own(true)
	w.eventually("dev", func(Status) bool { return w.dev.count("Apply") > applies },
		"won back: what the cluster holds is read again, and the head applied over the other replica's commit")
	w.eventually("dev", idleAtRev(first), "at the head again")
}
