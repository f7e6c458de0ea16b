package ring

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Run joins the ring and holds this replica's Lease until ctx ends; it may be
// called once.
//
// It writes the Lease ferry-member-<Identity> (label ferry.dev/ring=<Name>,
// holderIdentity, leaseDurationSeconds, renewTime, and the address, instance
// and signature annotations)
// once per RenewEvery: one write per period for the whole replica, whatever
// the number of repositories. A failed renewal is retried every RenewEvery/3
// until one succeeds. It follows the ring's Leases with a watch (see follow).
//
// When ctx ends it stops renewing, closes the fence and deletes its Lease
// (guarded by the resourceVersion it last wrote, so it never deletes a Lease a
// successor wrote), so the others see it leave at once instead of after
// LeaseDuration. It returns once everything it started has stopped, with the
// error of that delete, if any; the Lease then expires by itself. Renewal
// failures while running are logged, not returned: the fence reports them.
func (r *Ring) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: run: already started", r.ref())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.runCtx, r.running = ctx, true
	r.mu.Unlock()

	var wg sync.WaitGroup
	var leaveErr error
	wg.Go(func() { leaveErr = r.hold(ctx) })
	wg.Go(func() { r.follow(ctx) })
	wg.Wait()

	r.mu.Lock()
	r.running, r.fenceOpen, r.leases, r.members, r.epochs, r.deadline, r.seen = false, false, nil, nil, nil, time.Time{}, false
	r.trusted, r.sightings = false, map[string]*sighting{}
	r.mu.Unlock()
	r.signal()
	return leaveErr
}

// hold renews the Lease every RenewEvery until ctx ends, then leaves.
func (r *Ring) hold(ctx context.Context) error {
	timer := r.clock.NewTimer(0)
	defer timer.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return r.leave(context.WithoutCancel(ctx))
		case <-timer.C():
		}
		start := r.clock.Now()
		next := r.renewEvery
		err := r.renew(ctx, start)
		switch {
		case err != nil && ctx.Err() == nil:
			// Warn once per outage; the retries are Debug.
			level := slog.LevelWarn
			if failing {
				level = slog.LevelDebug
			}
			r.log.Log(ctx, level, "renew ring lease", "lease", r.leaseName, "ring", r.name, "error", err)
			failing, next = true, r.renewEvery/3
		case err == nil && failing:
			r.log.Info("renewed ring lease again", "lease", r.leaseName, "ring", r.name)
			failing = false
		}
		timer.Reset(max(next-r.clock.Since(start), 0))
	}
}

// renew writes renewTime=now to the Lease: one Update in the steady state. The
// first renewal, and the one after a conflict or a missing Lease, reads it
// first (or creates it). A renewal is bounded by RenewEvery.
func (r *Ring) renew(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, r.renewEvery)
	defer cancel()
	// The API server keeps microseconds; write, sign and remember the same instant.
	now = now.Truncate(time.Microsecond)
	leases := r.client.CoordinationV1().Leases(r.namespace)
	if r.held == nil {
		cur, err := leases.Get(ctx, r.leaseName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			created, err := leases.Create(ctx, r.desired(nil, now), metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("%s: create: %w", r.ref(), err)
			}
			r.held = created
			r.renewed(now)
			r.log.Info("joined ring", "lease", r.leaseName, "ring", r.name)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: get: %w", r.ref(), err)
		}
		r.held = cur
	}
	updated, err := leases.Update(ctx, r.desired(r.held, now), metav1.UpdateOptions{})
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			r.held = nil // someone else wrote or deleted it: read it again next time
		}
		return fmt.Errorf("%s: renew: %w", r.ref(), err)
	}
	r.held = updated
	r.renewed(now)
	return nil
}

// desired is the Lease as this replica holds it at now, built on cur (the
// version read or last written) when there is one, and signed.
func (r *Ring) desired(cur *coordinationv1.Lease, now time.Time) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: r.leaseName, Namespace: r.namespace}}
	if cur != nil {
		l = cur.DeepCopy()
	}
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[RingLabel] = r.name
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	if r.address != "" {
		l.Annotations[AddressAnnotation] = r.address
	} else {
		delete(l.Annotations, AddressAnnotation)
	}
	if instanceOf(l) != r.instance || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != r.identity || l.Spec.AcquireTime == nil {
		l.Spec.HolderIdentity = ptr.To(r.identity)
		l.Spec.AcquireTime = &metav1.MicroTime{Time: now}
		if cur != nil {
			l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
		}
	}
	l.Spec.LeaseDurationSeconds = ptr.To(int32(r.leaseDuration / time.Second))
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	r.signLease(l)
	return l
}

// maxRenewals is how many of its latest renewals a replica recognises in the
// watch cache (viewTrustedUntilLocked).
const maxRenewals = 4

// renewed records a successful write of renewTime=at and opens the fence
// again if it was closed.
func (r *Ring) renewed(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastRenew = at
	r.renewals = append(r.renewals, at)
	if len(r.renewals) > maxRenewals {
		r.renewals = slices.Delete(r.renewals, 0, len(r.renewals)-maxRenewals)
	}
	if !r.fenceOpen && r.running && r.freshLocked(r.clock.Now()) {
		r.fence, r.closeFn = context.WithCancelCause(r.runCtx)
		r.fenceOpen = true
		r.signal()
	}
	r.wake() // the fence's deadline moved
}

// freshLocked reports whether this replica's last renewal is recent enough to
// mutate: less than LeaseDuration-RenewEvery old, so it stops RenewEvery
// before the others can see its Lease expire.
func (r *Ring) freshLocked(now time.Time) bool {
	return r.running && !r.lastRenew.IsZero() && now.Before(r.staleAt())
}

func (r *Ring) staleAt() time.Time {
	return r.lastRenew.Add(r.leaseDuration - r.renewEvery)
}

// leave deletes the Lease this replica last wrote, bounded by RenewEvery.
func (r *Ring) leave(ctx context.Context) error {
	if r.held == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.renewEvery)
	defer cancel()
	err := r.client.CoordinationV1().Leases(r.namespace).Delete(ctx, r.leaseName, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{ResourceVersion: &r.held.ResourceVersion},
	})
	r.held = nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: leave: %w", r.ref(), err)
	}
	r.log.Info("left ring", "lease", r.leaseName, "ring", r.name)
	return nil
}
