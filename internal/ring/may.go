package ring

import (
	"context"
	"time"
)

// May reports whether this replica may mutate what key names now.
//
// owned is false when another member owns key, or when there is no live
// member (before Run has seen the ring, after it returns); after is then 0.
//
// When this replica owns key, after is 0 if it may mutate now, else how long
// to wait before asking again:
//   - while its own Lease is stale (its last successful renewal is
//     LeaseDuration-RenewEvery old or older), after is RenewEvery, the time to
//     the next renewal attempt: a replica that cannot renew stops mutating
//     before the others can see its Lease expire;
//   - until it has owned key for one LeaseDuration, after is the rest of it,
//     when the previous owner is still a member: a new owner waits until the
//     previous owner has seen the change (or its Lease has expired, and it
//     stopped before). A key won because its owner left (a graceful leave
//     deletes the Lease after the replica stopped; an expired Lease means its
//     replica stopped RenewEvery before) is mutable at once, so a replica
//     killed is taken over one LeaseDuration after its last renewal.
//
// Ownership is dated from this replica's own history of membership (see
// mayFromLocked): losing key and winning it back from a live member restarts
// the wait, and so does a replica's own start beside members (it cannot know
// whether they have seen it yet). The history is kept for one LeaseDuration
// and is bounded by membership changes, not by keys.
func (r *Ring) May(key string) (owned bool, after time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	r.refreshLocked(now)
	i := ownerIndex(key, r.members)
	if i < 0 || r.members[i].Identity != r.identity {
		return false, 0
	}
	if !r.freshLocked(now) {
		return true, r.renewEvery
	}
	from := r.mayFromLocked(key)
	if from.IsZero() {
		// Members and history are updated together, so this does not
		// happen; if it did, a full wait is the safe answer.
		from = now.Add(r.leaseDuration)
	}
	return true, max(from.Sub(now), 0)
}

// Fence returns a context derived from ctx that is cancelled, with cause
// ErrFenced, as soon as this replica's Lease goes stale (RenewEvery before
// the others can see it expire) or the replica leaves the ring. It is
// cancelled at once when the Lease is stale already. Work that mutates runs
// under it; a later fresh renewal does not revive it, ask for a new one. Its
// resources are released when ctx ends or the fence closes, so derive it from
// a context that ends (one reconcile's).
func (r *Ring) Fence(ctx context.Context) context.Context {
	r.mu.Lock()
	r.refreshLocked(r.clock.Now())
	fence, open := r.fence, r.fenceOpen && r.freshLocked(r.clock.Now())
	r.mu.Unlock()

	fenced, cancel := context.WithCancelCause(ctx)
	if !open {
		cancel(ErrFenced)
		return fenced
	}
	stop := context.AfterFunc(fence, func() { cancel(ErrFenced) })
	context.AfterFunc(fenced, func() { stop() })
	return fenced
}
