package ring

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAMemberWhoseClockRunsBehindStaysAMemberWhileItRenews(t *testing.T) {
	// b's clock is 11 s behind a's: its renewTime + 15 s is 4 s ahead of a's
	// clock when written, and b renews every 5 s.
	s := newSim(t, "a")
	for range 6 {
		s.renewBy("a", 0).renewBy("b", -11*time.Second).eval()
		s.step(simRenew - time.Millisecond)
		assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()), "b is a member just before its next renewal")
		s.step(time.Millisecond)
	}
	assert.Len(t, s.r.epochs, 1, "membership never changed")
}

func TestAMemberWhoseClockRunsAheadIsDroppedOneLeaseDurationAfterItsLastRenewalWasSeen(t *testing.T) {
	// b's clock is an hour ahead (or someone wrote renewTime an hour ahead):
	// b is dropped one lease duration after a saw it renew, not in an hour.
	s := newSim(t, "a")
	for range 3 {
		s.renewBy("a", 0).renewBy("b", time.Hour).eval()
		s.step(simRenew)
	}
	s.renewBy("a", 0).renewBy("b", time.Hour).eval() // b's last renewal
	lastSeen := s.clk.Now()
	s.run(simLease-time.Millisecond, "a")
	assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()), "b is live until one lease duration after it was seen renewing")
	assert.Equal(t, lastSeen.Add(simLease), memberNamed(s.r.Members(), "b").Expires)
	s.step(time.Millisecond)
	assert.Equal(t, []string{"a"}, identities(s.r.Members()), "then b is dropped")
}

func TestALeaseSeenForTheFirstTimeCountsFromWhenItWasSeenUnlessItIsLongStale(t *testing.T) {
	cases := []struct {
		name      string
		age       time.Duration // how old b's renewTime is by a's clock when a first sees it
		wantUntil time.Duration // how long after first sight b stays a member; 0: never
	}{
		{"a Lease renewed a moment ago is live for one lease duration", time.Second, simLease},
		{"a Lease renewed 20 s ago by its holder's clock may be a clock running behind: live for one lease duration", 20 * time.Second, simLease},
		{"a Lease older than its duration and the skew allowance is expired at once", simLease + skewAllowance + time.Second, 0},
		{"a Lease left by a replica SIGKILLed an hour ago is expired at once", time.Hour, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, "a")
			s.renewBy("a", 0).renewBy("b", -tc.age).eval()
			if tc.wantUntil == 0 {
				assert.Equal(t, []string{"a"}, identities(s.r.Members()))
				return
			}
			assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()))
			s.run(tc.wantUntil-time.Millisecond, "a")
			assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()), "still live a moment before")
			s.step(time.Millisecond)
			assert.Equal(t, []string{"a"}, identities(s.r.Members()), "expired one lease duration after first sight")
		})
	}
}

func TestAStalledWatchDropsNobodyAndStartsNothingNew(t *testing.T) {
	owner := func(k string, ids ...string) string { return bruteOwners([]string{k}, ids...)[k] }
	ofA := findKey(t, func(k string) bool { return owner(k, "a", "b") == "a" })
	s := newSim(t, "a").renew("a", "b").run(simLease, "a", "b")
	owned, after := s.r.May(ofA)
	require.True(t, owned)
	require.Zero(t, after)

	// The watch stops delivering; a's renewals still succeed, b still renews.
	s.stall(true)
	s.run(3*simLease, "a", "b")
	assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()), "b, whose renewals a cannot see, is not dropped")
	owned, after = s.r.May(ofA)
	assert.True(t, owned)
	assert.Equal(t, simRenew, after, "a starts nothing new: a member that joined would not show")
	assert.NoError(t, s.r.Fence(t.Context()).Err(), "work in flight goes on: a's Lease is fresh")
	assert.Equal(t, 1, s.logs.count("ring view frozen"), "said once: %s", s.logs)

	s.stall(false)
	assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()))
	owned, after = s.r.May(ofA)
	assert.True(t, owned)
	assert.Zero(t, after, "the view is current again")
	assert.Equal(t, 1, s.logs.count("ring view current again"), s.logs.String())

	// A member that leaves while the watch is stalled is dropped once it is not.
	s.stall(true).run(simLease, "a").leave("b").run(simLease, "a")
	assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()))
	s.stall(false)
	assert.Equal(t, []string{"a"}, identities(s.r.Members()))
	assert.Equal(t, 2, s.logs.count("ring view frozen"), "said once per stall")
}

func TestAReplicaWhoseRenewalsFailFreezesItsViewToo(t *testing.T) {
	// The watch is fine but a cannot write: its copy of a's Lease ages, and
	// a stops dropping others (it is fenced soon anyway) rather than judge
	// them by a view it cannot check.
	s := newSim(t, "a").renew("a", "b").run(simLease, "a", "b")
	s.run(s.r.viewWindow(), "b").leave("b")
	assert.Equal(t, []string{"a", "b"}, identities(s.r.Members()))
}
