package ring

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// Expiry is judged as client-go's leader election judges it: by when this
// replica saw a Lease renewed, by its own clock, never by comparing the
// holder's renewTime with this replica's clock. Two clocks 11 s apart would
// otherwise make a member that renews every 5 s of a 15 s Lease look expired
// to the other for 1 s of every 5, or one whose clock runs ahead (or a Lease
// written with a renewTime far in the future) live long after it stopped.

// skewAllowance is how far clocks may disagree before a Lease seen for the
// first time is taken for stale by its renewTime alone: one whose renewTime
// is older than its duration plus this, by this replica's clock, is expired at
// once (a replica SIGKILLed an hour ago does not delay a cold start); any
// other first sighting is counted from when it was seen.
const skewAllowance = time.Minute

// sighting is what this replica saw of a Lease and when.
type sighting struct {
	renewTime time.Time
	instance  string
	// at is when this replica saw renewTime or instance change, by its own
	// clock; zero when it first saw the Lease already stale.
	at time.Time
}

// observe returns the sighting of v at now, given the previous one (nil: the
// first). Only renewTime and instance count as a renewal: both are signed,
// so a write by anyone without the token (an annotation, a label) does not
// keep a member alive. Someone who can write Leases could put back an older
// signed copy to the same effect, as they could delete it; they cannot add a
// member or move one's address.
func observe(prev *sighting, v leaseView, now time.Time) sighting {
	if prev != nil && prev.renewTime.Equal(v.renewTime) && prev.instance == v.instance {
		return *prev
	}
	s := sighting{renewTime: v.renewTime, instance: v.instance, at: now}
	if prev == nil && now.After(v.renewTime.Add(v.duration+skewAllowance)) {
		s.at = time.Time{}
	}
	return s
}

// expires is when the Lease sighted as s, of duration d, expires for this
// replica; in the past when it was first seen stale.
func (s sighting) expires(d time.Duration) time.Time {
	if s.at.IsZero() {
		return s.renewTime.Add(d)
	}
	return s.at.Add(d)
}

// othersLocked returns the members other than this replica that the watch
// cache shows live at now, sorted by identity, and remembers when it saw
// each renewal. Leases that do not count are logged once by name (see
// ignoreLocked); sightings of Leases gone from the cache are forgotten.
func (r *Ring) othersLocked(leases []*coordinationv1.Lease, now time.Time) []Member {
	var out []Member
	present := make(map[string]bool, len(leases))
	ignored := map[string]bool{}
	for _, l := range leases {
		if l.Name == r.leaseName {
			continue // this replica's own: judged by its own renewals
		}
		v, why := readLease(l, r.name, r.token)
		if why != "" {
			if l.DeletionTimestamp == nil {
				ignored[l.Name] = true
				r.ignoreLocked(l.Name, why)
			}
			continue
		}
		present[v.identity] = true
		s := observe(r.sightings[v.identity], v, now)
		r.sightings[v.identity] = &s
		if exp := s.expires(v.duration); exp.After(now) {
			out = append(out, Member{Identity: v.identity, Address: v.address, Expires: exp})
			r.deadline = earliest(r.deadline, exp)
		}
	}
	for id := range r.sightings {
		if !present[id] {
			delete(r.sightings, id)
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

// viewWindow is how long after one of its renewals this replica trusts a
// watch cache that shows it, and no later one, to be current: the next
// renewal is due RenewEvery later, and the rest is for the write and the
// watch to deliver it (and for one failed attempt). It ends before the
// Lease of a member last seen renewed just before the watch stalled could
// expire in this replica's view (LeaseDuration-RenewEvery later at the
// soonest) when RenewEvery is at most LeaseDuration/2.5 (the default is a
// third); with longer periods it is RenewEvery+RenewEvery/4, and a stall is
// caught later than that.
func (r *Ring) viewWindow() time.Duration {
	return max(r.renewEvery+r.renewEvery/4, r.leaseDuration-r.renewEvery-r.renewEvery/4)
}

// viewTrustedUntilLocked returns until when the watch cache, whose copy of
// this replica's Lease is own (nil: none), can be trusted to be current: it
// shows one of this replica's recent renewals. Zero when it does not.
func (r *Ring) viewTrustedUntilLocked(own *coordinationv1.Lease) time.Time {
	if instanceOf(own) != r.instance {
		return time.Time{}
	}
	rt := renewTimeOf(own)
	for _, at := range r.renewals {
		if at.Equal(rt) {
			return at.Add(r.viewWindow())
		}
	}
	return time.Time{}
}
