package ring

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationinformers "k8s.io/client-go/informers/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// follow keeps the ring's Leases in a watch cache until ctx ends, and
// re-evaluates membership on every change and whenever a Lease expires,
// this replica's own renewal goes stale, or the watch stops showing its
// renewals.
//
// A watch rather than a LIST per renew period: a graceful leave (a DELETE) is
// seen within milliseconds instead of up to a renew period later, and the API
// server sends each renewal once to each member instead of answering every
// member's LIST of every Lease each period. Expiry needs no event: a timer
// fires at the earliest one (expiry.go).
//
// The watch also tells this replica when another process deletes or
// rewrites its own Lease (ownLeaseEvent): the fence closes at once.
func (r *Ring) follow(ctx context.Context) {
	inf := coordinationinformers.NewFilteredLeaseInformer(r.client, r.namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = RingLabel + "=" + r.name })
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { r.wake() },
		UpdateFunc: func(old, cur any) {
			r.ownLeaseEvent(old, cur)
			r.wake()
		},
		DeleteFunc: func(old any) {
			r.ownLeaseEvent(old, nil)
			r.wake()
		},
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { inf.RunWithContext(ctx) })
	// Members are known once the first LIST is in; until then the loop below
	// still watches this replica's own renewals, to close the fence in time.
	wg.Go(func() {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return
		}
		store := inf.GetStore()
		r.mu.Lock()
		r.leases = func() []*coordinationv1.Lease {
			var out []*coordinationv1.Lease
			for _, o := range store.List() {
				if l, ok := o.(*coordinationv1.Lease); ok {
					out = append(out, l)
				}
			}
			return out
		}
		r.mu.Unlock()
		r.wake()
	})

	for {
		r.mu.Lock()
		now := r.clock.Now()
		r.evaluateLocked(now)
		wait := time.Duration(-1)
		if !r.deadline.IsZero() {
			wait = max(r.deadline.Sub(now), 0)
		}
		r.mu.Unlock()
		var timer clock.Timer
		var expired <-chan time.Time
		if wait >= 0 {
			timer = r.clock.NewTimer(wait)
			expired = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-r.poke:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// ownLeaseEvent closes the fence when the watch shows this replica's Lease,
// as this process wrote it, deleted (cur nil) or replaced by a version
// another process wrote (another instance, or none). The watch delivers a
// Lease's versions in order, so such a change was made after the write it
// replaces; a version of this process's replacing a foreign one is its own
// takeover, and changes of Leases it never wrote are not its concern.
func (r *Ring) ownLeaseEvent(old, cur any) {
	if d, ok := old.(cache.DeletedFinalStateUnknown); ok {
		old = d.Obj
	}
	was, _ := old.(*coordinationv1.Lease)
	if was == nil || was.Name != r.leaseName || instanceOf(was) != r.instance {
		return
	}
	now, _ := cur.(*coordinationv1.Lease)
	if now != nil && instanceOf(now) == r.instance {
		return
	}
	how := "deleted"
	if now != nil {
		how = "rewritten by another process"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loseLocked(renewTimeOf(was), how)
}

// refreshLocked re-evaluates when a deadline has passed that the evaluation
// loop may not have acted on yet, so reads never report an expired member or
// an open fence past its time.
func (r *Ring) refreshLocked(now time.Time) {
	if !r.deadline.IsZero() && !now.Before(r.deadline) {
		r.evaluateLocked(now)
	}
}

// evaluateLocked computes the live members at now, records a new epoch when
// they changed, closes the fence when this replica's renewal is stale, and
// sets the next deadline.
//
// Others are judged by when this replica saw them renew (othersLocked), but
// only while the watch is current: while its copy of this replica's own Lease
// is not one of its recent renewals (viewTrustedUntilLocked), nobody is
// dropped. This replica itself is judged by its own renewals.
func (r *Ring) evaluateLocked(now time.Time) {
	r.deadline = time.Time{}
	if r.leases != nil {
		leases := r.leases()
		var own *coordinationv1.Lease
		for _, l := range leases {
			if l.Name == r.leaseName {
				own = l
			}
		}
		members := r.othersLocked(leases, now)
		trustedUntil := r.viewTrustedUntilLocked(own)
		trusted := now.Before(trustedUntil)
		if trusted {
			r.deadline = earliest(r.deadline, trustedUntil)
		} else {
			for _, m := range r.members {
				if m.Identity != r.identity && !slices.ContainsFunc(members, func(o Member) bool { return o.Identity == m.Identity }) {
					members = append(members, m)
				}
			}
		}
		r.trustLocked(trusted)
		if self, ok := r.selfLiveLocked(now); ok {
			members = append(members, self)
			r.deadline = earliest(r.deadline, self.Expires)
		}
		sortMembers(members)
		ids := identities(members)
		if len(r.epochs) == 0 || !slices.Equal(r.epochs[len(r.epochs)-1].ids, ids) {
			r.epochs = append(r.epochs, epoch{start: now, ids: ids, first: !r.seen})
			r.seen = true
			r.departLocked(r.members, members, now)
			r.signal()
		}
		r.members = members
		r.pruneLocked(now)
	}
	if r.fenceOpen {
		if !r.freshLocked(now) {
			r.closeFn(ErrFenced)
			r.fenceOpen = false
			r.signal()
		} else {
			r.deadline = earliest(r.deadline, r.staleAt())
		}
	}
}

// trustLocked records whether the watch is current, saying once that the
// view froze when it stops being so, and once that it is current again.
func (r *Ring) trustLocked(trusted bool) {
	if trusted == r.trusted {
		return
	}
	if !trusted {
		r.log.Warn("ring view frozen: the watch has not shown this replica's recent renewals; dropping no member and starting no mutation until it does",
			"lease", r.leaseName, "ring", r.name)
		r.frozeLogged = true
	} else if r.frozeLogged {
		r.log.Info("ring view current again", "lease", r.leaseName, "ring", r.name)
		r.frozeLogged = false
	}
	r.trusted = trusted
	r.signal() // May's answers change
}

// selfLiveLocked returns this replica's own entry and whether it is a live
// member at now: its last renewal is less than LeaseDuration old (the others
// see its Lease expire no sooner) and no other process deleted or rewrote
// its Lease since.
func (r *Ring) selfLiveLocked(now time.Time) (Member, bool) {
	if !r.running || r.lastRenew.IsZero() || !r.lostOf.IsZero() {
		return Member{}, false
	}
	m := Member{Identity: r.identity, Address: r.address, Expires: r.lastRenew.Add(r.leaseDuration)}
	return m, now.Before(m.Expires)
}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Identity, b.Identity) })
}

func identities(ms []Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Identity
	}
	return ids
}

// earliest returns the earlier of a and b, where zero means none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
