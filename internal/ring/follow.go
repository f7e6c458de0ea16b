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
// re-evaluates membership on every change and whenever a Lease expires or this
// replica's own renewal goes stale.
//
// A watch rather than a LIST per renew period: a graceful leave (a DELETE) is
// seen within milliseconds instead of up to a renew period later, and the API
// server sends each renewal once to each member instead of answering every
// member's LIST of every Lease each period. Expiry needs no event: it is
// computed from each Lease's renewTime, and a timer fires at the earliest one.
func (r *Ring) follow(ctx context.Context) {
	inf := coordinationinformers.NewFilteredLeaseInformer(r.client, r.namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = RingLabel + "=" + r.name })
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.wake() },
		UpdateFunc: func(any, any) { r.wake() },
		DeleteFunc: func(any) { r.wake() },
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
func (r *Ring) evaluateLocked(now time.Time) {
	r.deadline = time.Time{}
	if r.leases != nil {
		members := r.liveLocked(r.leases(), now)
		ids := identities(members)
		if len(r.epochs) == 0 || !slices.Equal(r.epochs[len(r.epochs)-1].ids, ids) {
			r.epochs = append(r.epochs, epoch{start: now, ids: ids, first: !r.seen})
			r.seen = true
			r.signal()
		}
		r.members = members
		for _, m := range members {
			r.deadline = earliest(r.deadline, m.Expires)
		}
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

// liveLocked returns the members whose Leases have not expired at now,
// sorted by identity. A Lease counts when readLease says it does: signed with
// the ring's token, named LeasePrefix+holderIdentity (so an identity appears
// once), with a renewTime and a positive duration. Others are logged once by
// name (ignoreLocked); names of Leases gone or counting again are forgotten.
func (r *Ring) liveLocked(leases []*coordinationv1.Lease, now time.Time) []Member {
	var out []Member
	ignored := map[string]bool{}
	for _, l := range leases {
		v, why := readLease(l, r.name, r.token)
		if why != "" {
			if l.DeletionTimestamp == nil {
				ignored[l.Name] = true
				r.ignoreLocked(l.Name, why)
			}
			continue
		}
		if exp := v.renewTime.Add(v.duration); exp.After(now) {
			out = append(out, Member{Identity: v.identity, Address: v.address, Expires: exp})
		}
	}
	for name := range r.ignored {
		if !ignored[name] {
			delete(r.ignored, name)
		}
	}
	if len(r.ignored) < maxIgnored {
		r.ignoredFull = false
	}
	sortMembers(out)
	return out
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
