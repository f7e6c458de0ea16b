package ring

import (
	"context"
	"slices"
	"time"
)

// May reports whether this replica may mutate what key names now.
//
// owned is false when another member owns key, or when this replica is not
// a live member (before Run has seen the ring, after it returns, while its
// Lease is lost to another process or expired); after is then 0.
//
// When this replica owns key, after is 0 if it may mutate now, else how long
// to wait before asking again:
//   - while its own Lease is stale (its last successful renewal is
//     LeaseDuration-RenewEvery old or older), after is RenewEvery, the time to
//     the next renewal attempt: a replica that cannot renew stops mutating
//     before the others can see its Lease expire;
//   - while its view is frozen (the watch has not shown its own recent
//     renewals, see Members), after is RenewEvery: a stalled watch would not
//     show a member that joined and won key, so it starts nothing new;
//   - until it has owned key for one LeaseDuration, after is the rest of it,
//     when the previous owner is still a member: a new owner waits until the
//     previous owner has seen the change through its watch, or has stopped
//     starting work because its watch is stalled (which it notices within
//     the view window, see viewWindow), or its Lease has expired and it
//     stopped before. A key won because its owner left (a graceful
//     leave deletes the Lease after the replica stopped; an expired Lease
//     means its replica stopped RenewEvery before) is mutable at once, so a
//     replica killed is taken over one LeaseDuration after its last renewal
//     was seen.
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
	if !r.freshLocked(now) || !r.trusted {
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
// the others can see it expire), the watch shows another process deleted or
// rewrote it, or the replica leaves the ring. It is cancelled at once when
// the Lease is stale or lost already. Work that mutates runs under it; a
// later fresh renewal does not revive it, ask for a new one. Its resources
// are released when ctx ends or the fence closes, so derive it from a context
// that ends (one reconcile's).
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

// maxEpochs caps the membership history May reads. Only changes within the
// last LeaseDuration matter; a member flapping faster than this cap allows
// makes May wait longer than it must, never shorter.
const maxEpochs = 64

// epoch is one membership as this replica saw it, from start until the next.
type epoch struct {
	start time.Time
	ids   []string // sorted
	// first marks the first membership this replica saw in its run: what
	// came before it is unknown, not pruned.
	first bool
}

// pruneLocked drops epochs that ended more than LeaseDuration ago: May never
// looks further back. The oldest kept one started at or before now-LeaseDuration.
func (r *Ring) pruneLocked(now time.Time) {
	drop := 0
	for drop+1 < len(r.epochs) && !r.epochs[drop+1].start.After(now.Add(-r.leaseDuration)) {
		drop++
	}
	drop = max(drop, len(r.epochs)-maxEpochs)
	r.epochs = slices.Delete(r.epochs, 0, drop)
}

// mayFromLocked returns when this replica may first mutate key, as far as
// the kept epochs tell; zero when it does not own key now. It owns key since
// the start of the earliest epoch, in an unbroken run up to now, under which
// it owned key; it may mutate one LeaseDuration later, unless whoever owned
// key before is no longer a member:
//   - after a change, the previous owner is the owner under the epoch
//     before; one that left either deleted its Lease once it had stopped,
//     or let it expire, and a replica stops mutating RenewEvery before its
//     Lease expires. It is not waited for.
//   - at this replica's own start, the previous owner is the owner among the
//     others it sees; with none, nobody is waited for.
//   - when the run reaches back past the kept history, the wait is counted
//     from the oldest epoch kept: longer than needed, never shorter.
func (r *Ring) mayFromLocked(key string) time.Time {
	owns := func(ids []string) bool {
		j := ownerIndexIDs(key, ids)
		return j >= 0 && ids[j] == r.identity
	}
	i := len(r.epochs)
	for i > 0 && owns(r.epochs[i-1].ids) {
		i--
	}
	if i == len(r.epochs) {
		return time.Time{}
	}
	won := r.epochs[i]
	var before []string
	switch {
	case i > 0:
		before = r.epochs[i-1].ids
	case won.first:
		before = slices.DeleteFunc(slices.Clone(won.ids), func(id string) bool { return id == r.identity })
	default:
		return won.start.Add(r.leaseDuration)
	}
	if j := ownerIndexIDs(key, before); j < 0 || !slices.Contains(won.ids, before[j]) {
		return won.start
	}
	return won.start.Add(r.leaseDuration)
}
