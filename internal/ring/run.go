package ring

import (
	"context"
	"errors"
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
// and signature annotations) once per RenewEvery: one write per period for
// the whole replica, whatever the number of repositories. A failed renewal is
// retried every RenewEvery/3 until one succeeds. It follows the ring's Leases
// with a watch (see follow).
//
// It never overwrites the Lease of another live process with the same
// identity (an identity collision: two rings sharing a home namespace and a
// name, a `ferry sync` run as the replica): it logs "identity collision",
// keeps its fence closed and reads the Lease again every RenewEvery, taking
// it only once the other has let it expire (judged as Members judges expiry).
// Of two processes with one identity, the one holding the Lease works and
// the other waits. When another process deletes or rewrites this replica's
// Lease, the fence closes as soon as the watch shows it, and the replica is
// a member again only after a renewal sent after it was seen.
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
	r.trusted, r.sightings, r.gone = false, map[string]*sighting{}, map[string]time.Time{}
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
		_, collision := errors.AsType[*collisionError](err)
		switch {
		case collision:
			// Logged by renew, once per other process; read again a period later.
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

// collisionError is a renewal that found this replica's Lease held by
// another live process with the same identity.
type collisionError struct {
	lease, instance string
}

func (e *collisionError) Error() string {
	return "lease " + e.lease + ": identity collision: held by another live process (instance " + e.instance + ")"
}

// renew writes renewTime=now to the Lease: one Update in the steady state.
// The first renewal, and one whose Update finds the Lease changed or gone,
// reads it (Get) and then creates it, updates it, or backs off from another
// process holding it (checkRival). A renewal is bounded by RenewEvery.
func (r *Ring) renew(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, r.renewEvery)
	defer cancel()
	// The API server keeps microseconds; write, sign and remember the same instant.
	now = now.Truncate(time.Microsecond)
	leases := r.client.CoordinationV1().Leases(r.namespace)
	for reread := false; ; reread = true {
		if r.held == nil {
			cur, err := leases.Get(ctx, r.leaseName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return r.create(ctx, now)
			}
			if err != nil {
				return fmt.Errorf("%s: get: %w", r.ref(), err)
			}
			if err := r.checkRival(cur); err != nil {
				return err
			}
			r.held = cur
		}
		takeover := instanceOf(r.held) != r.instance
		r.startWrite(now)
		updated, err := leases.Update(ctx, r.desired(r.held, now), metav1.UpdateOptions{})
		if err == nil {
			r.held = updated
			r.renewed(now)
			if takeover {
				r.log.Info("joined ring", "lease", r.leaseName, "ring", r.name)
			}
			return nil
		}
		r.startWrite(time.Time{})
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: renew: %w", r.ref(), err)
		}
		// Someone else wrote or deleted it since this replica read or wrote
		// it. Gone: the watch may not have said so yet. Changed: the read
		// below tells by whom.
		if apierrors.IsNotFound(err) && !takeover {
			r.lose(renewTimeOf(r.held), "deleted")
		}
		r.held = nil
		if reread {
			return fmt.Errorf("%s: renew: %w", r.ref(), err)
		}
	}
}

// create writes the Lease where there is none.
func (r *Ring) create(ctx context.Context, now time.Time) error {
	r.startWrite(now)
	created, err := r.client.CoordinationV1().Leases(r.namespace).Create(ctx, r.desired(nil, now), metav1.CreateOptions{})
	if err != nil {
		// Already there: another process created it first; the next
		// attempt reads it.
		r.startWrite(time.Time{})
		return fmt.Errorf("%s: create: %w", r.ref(), err)
	}
	r.held = created
	r.renewed(now)
	r.log.Info("joined ring", "lease", r.leaseName, "ring", r.name)
	return nil
}

// checkRival decides whether this replica may write over cur, its Lease as
// just read: yes when this process wrote it, when it is not a member's (not
// signed with the token: a forgery or an older ferry's), or when the other
// process that holds it let it expire; otherwise a *collisionError. Finding
// it held by another process after this one held it means it was lost.
func (r *Ring) checkRival(cur *coordinationv1.Lease) error {
	if instanceOf(cur) == r.instance {
		r.rival = nil
		return nil
	}
	r.mu.Lock()
	r.loseLocked(r.lastRenew, "rewritten by another process")
	r.mu.Unlock()
	v, why := readLease(cur, r.name, r.token)
	if why != "" {
		r.rival = nil
		return nil
	}
	now := r.clock.Now()
	logged := r.rival != nil && r.rival.instance == v.instance
	s := observe(r.rival, v, now)
	r.rival = &s
	if !now.Before(s.expires(v.duration)) {
		r.log.Info("ring lease of another process with this identity expired; taking it over", "lease", r.leaseName, "ring", r.name, "instance", v.instance)
		return nil
	}
	if !logged {
		r.log.Warn("identity collision: another live process holds this replica's ring lease; waiting until it expires",
			"lease", r.leaseName, "ring", r.name, "instance", v.instance)
	}
	return &collisionError{lease: r.namespace + "/" + r.leaseName, instance: v.instance}
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

// startWrite records the renewTime of the write about to be sent (zero: the
// write is over, and failed), so that a loss the watch shows while it is in
// flight is told apart from one it replaces (loseLocked).
func (r *Ring) startWrite(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writing = at
}

// maxRenewals is how many of its latest renewals a replica recognises in the
// watch cache (viewTrustedUntilLocked).
const maxRenewals = 4

// renewed records a successful write of renewTime=at and opens the fence
// again if it was closed. It ends a loss the watch showed before this write
// was sent; not one of this write itself.
func (r *Ring) renewed(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writing = time.Time{}
	r.lastRenew = at
	r.renewals = append(r.renewals, at)
	if len(r.renewals) > maxRenewals {
		r.renewals = slices.Delete(r.renewals, 0, len(r.renewals)-maxRenewals)
	}
	if !r.lostOf.IsZero() && !r.lostOf.Equal(at) {
		r.lostOf = time.Time{}
	}
	if !r.fenceOpen && r.running && r.freshLocked(r.clock.Now()) {
		r.fence, r.closeFn = context.WithCancelCause(r.runCtx)
		r.fenceOpen = true
		r.signal()
	}
	r.wake() // the fence's deadline moved
}

// lose is loseLocked under the lock.
func (r *Ring) lose(of time.Time, how string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loseLocked(of, how)
}

// loseLocked records that another process deleted or rewrote this replica's
// Lease as it was when this process wrote renewTime=of, closes the fence at
// once and drops this replica from its members until a later write succeeds.
// A loss of an older write (one a later write of this process's already
// replaced, e.g. a delete the watch delivers after this replica created the
// Lease again) is ignored.
func (r *Ring) loseLocked(of time.Time, how string) {
	switch {
	case of.IsZero():
		return
	case !r.writing.IsZero() && of.Equal(r.writing):
		// The write in flight landed and was lost already.
	case of.Equal(r.lastRenew):
		if !r.lostOf.IsZero() {
			return // lost already, perhaps the write in flight too
		}
	default:
		return
	}
	if r.lostOf.IsZero() {
		r.log.Warn("ring lease lost: another process deleted or rewrote it; fenced until a renewal of this replica's succeeds",
			"lease", r.leaseName, "ring", r.name, "how", how)
	}
	r.lostOf = of
	if r.fenceOpen {
		r.closeFn(ErrFenced)
		r.fenceOpen = false
	}
	r.signal()
	r.evaluateLocked(r.clock.Now())
	r.wake()
}

// freshLocked reports whether this replica may mutate: it holds its Lease
// (no other process deleted or rewrote it since its last renewal) and that
// renewal is less than LeaseDuration-RenewEvery old, so it stops RenewEvery
// before the others can see its Lease expire.
func (r *Ring) freshLocked(now time.Time) bool {
	return r.running && !r.lastRenew.IsZero() && r.lostOf.IsZero() && now.Before(r.staleAt())
}

func (r *Ring) staleAt() time.Time {
	return r.lastRenew.Add(r.leaseDuration - r.renewEvery)
}

// leave deletes the Lease this replica last wrote, bounded by RenewEvery;
// nothing when it holds none (never written, or lost to another process).
func (r *Ring) leave(ctx context.Context) error {
	r.mu.Lock()
	lost := !r.lostOf.IsZero()
	r.mu.Unlock()
	held := r.held
	r.held = nil
	if held == nil || instanceOf(held) != r.instance || lost {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.renewEvery)
	defer cancel()
	err := r.client.CoordinationV1().Leases(r.namespace).Delete(ctx, r.leaseName, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{ResourceVersion: &held.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: leave: %w", r.ref(), err)
	}
	r.log.Info("left ring", "lease", r.leaseName, "ring", r.name)
	return nil
}
