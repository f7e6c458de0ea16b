package ring

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDepartedIsTrueOnlyForAMemberNotSeenLiveForALeaseDuration(t *testing.T) {
	cases := []struct {
		name   string
		script func(*sim)
		want   bool
	}{{
		name:   "an identity never seen (a ferry sync process) has not departed",
		script: func(s *sim) { s.renew("a", "b").run(simLease, "a", "b") },
	}, {
		name:   "a live member has not departed",
		script: func(s *sim) { s.renew("a", "c").run(3*simLease, "a", "c") },
	}, {
		name: "a member gone a moment ago has not departed",
		script: func(s *sim) {
			s.renew("a", "c").run(simLease, "a", "c").leave("c").step(simLease - time.Millisecond)
		},
	}, {
		name:   "a member that left one lease duration ago has departed",
		script: func(s *sim) { s.renew("a", "c").run(simLease, "a", "c").leave("c").step(simLease) },
		want:   true,
	}, {
		name:   "a member whose Lease expired one lease duration ago has departed",
		script: func(s *sim) { s.renew("a", "c").run(simLease, "a", "c").run(2*simLease, "a") },
		want:   true,
	}, {
		name: "a member that came back has not departed",
		script: func(s *sim) {
			s.renew("a", "c").run(simLease, "a", "c").leave("c").step(simLease).renew("c")
		},
	}, {
		name: "a member that left while this replica's view was frozen has not departed",
		script: func(s *sim) {
			s.renew("a", "c").run(simLease, "a", "c").stall(true).leave("c").run(3*simLease, "a")
		},
	}, {
		name: "a member gone longer than departures are kept is unknown again",
		script: func(s *sim) {
			s.renew("a", "c").run(simLease, "a", "c").leave("c").run(departedKeep, "a")
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, "a")
			tc.script(s)
			assert.Equal(t, tc.want, s.r.Departed("c"))
		})
	}
}

func TestDepartedRemembersABoundedNumberOfIdentities(t *testing.T) {
	s := newSim(t, "a").renew("a")
	for i := range maxDeparted + 100 {
		id := fmt.Sprintf("r-%d", i)
		s.renew(id).leave(id).step(time.Millisecond)
	}
	s.step(simLease)
	assert.LessOrEqual(t, len(s.r.gone), maxDeparted)
	assert.False(t, s.r.Departed("r-0"), "the longest gone are forgotten first")
	assert.True(t, s.r.Departed(fmt.Sprintf("r-%d", maxDeparted+99)))
}
