package engine

import (
	"context"

	"k8s.io/client-go/util/workqueue"
)

// may says whether this replica may work on k now. An item of a repository
// another replica owns is dropped; one of a repository this replica only just
// took over comes back once it may mutate it.
func (e *Engine) may(q workqueue.TypedRateLimitingInterface[key], k key) bool {
	if e.opts.Ring == nil {
		return true
	}
	owned, after := e.opts.Ring.May(k.repo)
	switch {
	case !owned:
		q.Forget(k)
		return false
	case after > 0:
		q.AddAfter(k, after)
		return false
	}
	return true
}

// fence is ctx, cancelled when the ring fences this replica.
func (e *Engine) fence(ctx context.Context) context.Context {
	if e.opts.Ring == nil {
		return ctx
	}
	return e.opts.Ring.Fence(ctx)
}

// followRing queues a fetch of each repository this replica comes to own,
// as the ring changes, until ctx ends. A repository won or lost forgets what
// this replica knew of its environments (the cached inventories, what was
// applied and verified): another replica may have applied since, and what
// it won is read again from the cluster before it is planned from.
func (e *Engine) followRing(ctx context.Context) {
	if e.opts.Ring == nil {
		return
	}
	for {
		e.ownedMu.Lock()
		for name, rs := range e.repos {
			owned, _ := e.opts.Ring.May(name)
			if owned != e.owned[name] {
				for _, es := range rs.envs {
					es.forget()
				}
			}
			if owned && !e.owned[name] {
				e.queue.Add(key{fetchKey, name, ""})
			}
			e.owned[name] = owned
		}
		e.ownedMu.Unlock()
		select {
		case <-e.opts.Ring.Changed():
		case <-ctx.Done():
			return
		}
	}
}
