package ring

import (
	"slices"
	"time"
)

// What Departed remembers is bounded: identities dropped from the members,
// at most maxDeparted of them (the longest gone are forgotten first), each
// for at most departedKeep. Forgetting is the safe direction: an identity
// forgotten is unknown, and Departed says false.
const (
	maxDeparted  = 1024
	departedKeep = time.Hour
)

// Departed reports whether identity has left the ring as far as this
// replica can tell: it saw identity as a live member during this Run, and
// has not seen it live since, for at least LeaseDuration by its own clock.
// It is false for a live member, for an identity this replica never saw live
// (a `ferry sync` process, a member that joined before this replica started
// and left before it saw the ring), for one seen live within the last
// LeaseDuration, while this replica's view is frozen (nobody is dropped
// then), and for one gone longer than an hour or beyond the last 1024
// departures. A claim such as an inventory hold made by a departed identity
// can be ignored; any other is to be honoured until its own deadline.
func (r *Ring) Departed(identity string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	r.refreshLocked(now)
	at, ok := r.gone[identity]
	return ok && !now.Before(at.Add(r.leaseDuration)) && now.Sub(at) < departedKeep
}

// departLocked records, at now, the identities in before that are not in
// after as gone and forgets those in after, then bounds what it keeps.
func (r *Ring) departLocked(before, after []Member, now time.Time) {
	in := func(ms []Member, id string) bool {
		return slices.ContainsFunc(ms, func(m Member) bool { return m.Identity == id })
	}
	for _, m := range before {
		if !in(after, m.Identity) {
			r.gone[m.Identity] = now
		}
	}
	for _, m := range after {
		delete(r.gone, m.Identity)
	}
	for id, at := range r.gone {
		if now.Sub(at) >= departedKeep {
			delete(r.gone, id)
		}
	}
	for len(r.gone) > maxDeparted {
		oldest := ""
		for id, at := range r.gone {
			if oldest == "" || at.Before(r.gone[oldest]) {
				oldest = id
			}
		}
		delete(r.gone, oldest)
	}
}
