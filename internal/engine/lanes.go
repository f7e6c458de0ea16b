package engine

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// urgentWorkers are the urgent queue's workers, beside Options.Workers.
const urgentWorkers = 4

// busyRetry is how soon an item in process from the other lane comes back.
const busyRetry = 10 * time.Millisecond

// next processes one work item of q; false when q has shut down.
//
// Work a push asks for goes to a lane of its own, urgent, with workers of
// its own: a push is applied within a second even while a resync of a
// thousand repositories fills the main queue with drift checks. What a
// fetch from the urgent lane finds to reconcile stays in it. An item already
// in process from the other lane is re-queued every busyRetry until that
// lane releases it, so one environment is worked on by one worker at a
// time, whichever lane it came by.
func (e *Engine) next(ctx context.Context, q workqueue.TypedRateLimitingInterface[key]) bool {
	k, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(k)
	if !e.claim(k) {
		q.AddAfter(k, busyRetry)
		return true
	}
	defer e.release(k)
	if !e.may(q, k) {
		return true
	}
	// The fence is the item's own: it is released when the item is done
	// (derived from the workers' context, which lives as long as the
	// engine, it would stay registered on it for ever).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = e.fence(ctx)
	var err error
	switch k.kind {
	case fetchKey:
		var envs []string
		envs, err = e.fetch(ctx, k.repo)
		for _, env := range envs {
			q.Add(key{reconcileKey, k.repo, env})
		}
	case reconcileKey:
		err = e.reconcile(ctx, e.repos[k.repo].envs[k.env], false)
	}
	if retry := (*retryError)(nil); errors.As(err, &retry) && !q.ShuttingDown() {
		q.AddRateLimited(k)
		return true
	}
	q.Forget(k)
	return true
}

// claim marks k in process; false when it already is (by the other lane).
func (e *Engine) claim(k key) bool {
	e.busyMu.Lock()
	defer e.busyMu.Unlock()
	if e.busy[k] {
		return false
	}
	e.busy[k] = true
	return true
}

func (e *Engine) release(k key) {
	e.busyMu.Lock()
	defer e.busyMu.Unlock()
	delete(e.busy, k)
}
