package ring

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

func TestThreeReplicasSeeEachOtherWithinARenewPeriodAndWriteOncePerPeriod(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")

	for _, r := range reps {
		l, err := cluster.Client.CoordinationV1().Leases(ns).Get(t.Context(), "ferry-member-"+r.identity, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "test", l.Labels[RingLabel])
		assert.Equal(t, "http://"+r.identity+".test:8082", l.Annotations[AddressAnnotation])
		assert.Equal(t, r.identity, *l.Spec.HolderIdentity)
		assert.EqualValues(t, 2, *l.Spec.LeaseDurationSeconds)
		assert.NotNil(t, l.Spec.RenewTime)
		r.link.takeWrites()
	}

	// A measuring window, not a synchronisation: count what each replica
	// writes over six renew periods.
	const periods = 6
	time.Sleep(periods * testRenew)
	for _, r := range reps {
		writes := r.link.takeWrites()
		assert.InDelta(t, periods, len(writes), 1, "%s writes once per renew period: %v", r.identity, writes)
		for _, w := range writes {
			assert.Equal(t, "PUT /apis/coordination.k8s.io/v1/namespaces/"+ns+"/leases/ferry-member-"+r.identity, w,
				"%s writes only its own Lease", r.identity)
		}
	}
}

func TestThirtyKeysSplitEvenlyAndEveryReplicaAgreesOnTheirOwners(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")
	ks := keys(30)

	want := bruteOwners(ks, "a", "b", "c")
	for _, r := range reps {
		assert.Equal(t, want, owners(r, ks), "%s computes the same owners", r.identity)
	}
	// How 30 given names split is one draw of a binomial (n=30, p=1/3): for
	// arbitrary names all three shares land in 10 ± 3 about 64% of the time
	// (repo-00…repo-29 gives b only 6). These names are fixed, so the split
	// is too; TestOwnershipSpreadsEvenly checks the hash is uniform.
	count := map[string]int{}
	for _, id := range owners(reps[0], ks) {
		count[id]++
	}
	for _, id := range []string{"a", "b", "c"} {
		assert.InDelta(t, 10, count[id], 3, "%s owns %d of 30 keys", id, count[id])
	}
}

func TestAReplicaThatLeavesIsGoneAtOnceAndTheOthersTakeItsKeys(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")
	ks := keys(30)
	before := owners(reps[0], ks)
	c := reps[2]
	expires := c.Self().Expires

	left := time.Now()
	require.NoError(t, c.stop(), "a graceful leave deletes the Lease")
	_, err := cluster.Client.CoordinationV1().Leases(ns).Get(t.Context(), "ferry-member-c", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the Lease is deleted, got %v", err)
	assert.Empty(t, c.Members(), "a replica that left no longer reports a ring")
	owned, _ := c.May(ks[0])
	assert.False(t, owned)

	seen := eventually(t, testLease, "a and b drop c", func() bool {
		return len(reps[0].Members()) == 2 && len(reps[1].Members()) == 2
	})
	assert.Less(t, seen.Sub(left), 500*time.Millisecond, "seen within milliseconds, not at expiry")
	assert.True(t, seen.Before(expires), "seen before c's Lease would have expired (%s)", expires)

	after := bruteOwners(ks, "a", "b")
	for _, r := range reps[:2] {
		got := owners(r, ks)
		assert.Equal(t, after, got, "%s owns c's keys as rendezvous hashing over a and b says", r.identity)
		for _, k := range ks {
			if before[k] != "c" {
				assert.Equal(t, before[k], got[k], "key %s did not belong to c and stays put", k)
			}
		}
	}
}

func TestAReplicaKilledWithoutLeavingIsDroppedWhenItsLeaseExpires(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")
	ks := keys(30)
	c := reps[2]

	killed := time.Now()
	err := c.kill()
	require.Error(t, err, "a killed replica cannot delete its Lease")
	assert.Contains(t, err.Error(), "lease "+ns+"/ferry-member-c: leave:")

	l, err := cluster.Client.CoordinationV1().Leases(ns).Get(t.Context(), "ferry-member-c", metav1.GetOptions{})
	require.NoError(t, err, "the Lease stays until it expires")
	expires := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)

	dropped := eventually(t, 2*testLease, "a and b drop c", func() bool {
		return len(reps[0].Members()) == 2 && len(reps[1].Members()) == 2
	})
	assert.False(t, dropped.Before(expires), "c is dropped when its Lease expires (%s), not before (%s)", expires, dropped)
	assert.Less(t, dropped.Sub(killed), 2*testLease)

	want := bruteOwners(ks, "a", "b")
	for _, r := range reps[:2] {
		assert.Equal(t, want, owners(r, ks), "%s owns c's keys", r.identity)
	}
	for _, k := range ks {
		if bruteOwners([]string{k}, "a", "b", "c")[k] != "c" {
			continue
		}
		owner := reps[0]
		if want[k] == "b" {
			owner = reps[1]
		}
		owned, after := owner.May(k)
		assert.True(t, owned)
		assert.Zero(t, after, "%s may mutate %s at once: c stopped before its Lease expired", owner.identity, k)
	}
}

func TestScalingThreeToTwoToThreeMovesOnlyTheKeysRendezvousHashingMustMove(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")
	ks := keys(300)
	three := owners(reps[0], ks)
	require.Equal(t, bruteOwners(ks, "a", "b", "c"), three)

	require.NoError(t, reps[2].stop())
	waitMembers(t, testLease, reps[:2], "a", "b")
	two := owners(reps[0], ks)
	assert.Equal(t, two, owners(reps[1], ks), "a and b agree")

	moved := movedKeys(three, two)
	var mustMove []string
	for _, k := range ks {
		if three[k] == "c" {
			mustMove = append(mustMove, k)
		}
	}
	assert.Equal(t, mustMove, moved, "3 → 2 moves exactly c's keys")
	assert.InDelta(t, len(ks)/3, len(moved), 30)

	reps = append(reps[:2], join(t, ns, "c"))
	waitMembers(t, testLease, reps, "a", "b", "c")
	back := owners(reps[2], ks)
	moved = movedKeys(two, back)
	mustMove = nil
	for k, id := range bruteOwners(ks, "a", "b", "c") {
		if id == "c" {
			mustMove = append(mustMove, k)
		}
	}
	assert.ElementsMatch(t, mustMove, moved, "2 → 3 moves exactly the keys c wins")
	assert.Equal(t, three, back, "the returning member wins back exactly its old keys")
	for _, r := range reps[:2] {
		assert.Equal(t, back, owners(r, ks), "%s agrees", r.identity)
	}
}

// movedKeys returns, in key order, the keys whose owner differs.
func movedKeys(from, to map[string]string) []string {
	var out []string
	for _, k := range keys(len(from)) {
		if from[k] != to[k] {
			out = append(out, k)
		}
	}
	return out
}

func TestALeaseNotSignedWithTheRingsTokenIsNotAMember(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")
	leases := cluster.Client.CoordinationV1().Leases(ns)
	ks := keys(30)
	want := bruteOwners(ks, "a", "b", "c")

	// Anyone who can write Leases in the namespace tries to join, to take
	// a third of the repositories (and have webhooks forwarded to them).
	far := time.Now().Add(24 * time.Hour)
	unsigned := signedLease("test", "x", "i-x", "http://x.test:8082", far, testLease)
	delete(unsigned.Annotations, SignatureAnnotation)
	otherToken := signedLease("test", "y", "i-y", "http://y.test:8082", far, testLease)
	otherToken.Annotations[SignatureAnnotation] = hex.EncodeToString(leaseSignature("guessed-token", "test", leaseView{
		identity: "y", address: "http://y.test:8082", instance: "i-y", renewTime: far.Truncate(time.Microsecond), duration: testLease,
	}))
	real, err := leases.Get(t.Context(), LeasePrefix+"a", metav1.GetOptions{})
	require.NoError(t, err)
	copied := real.DeepCopy()
	copied.ObjectMeta = metav1.ObjectMeta{Name: LeasePrefix + "z", Labels: real.Labels, Annotations: real.Annotations}
	copied.Spec.HolderIdentity = ptr.To("z")
	for _, l := range []*coordinationv1.Lease{unsigned, otherToken, copied} {
		_, err := leases.Create(t.Context(), l, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	forged := []string{"x", "y", "z"}
	eventually(t, testLease, "every replica logs every forged Lease", func() bool {
		for _, r := range reps {
			for _, id := range forged {
				if r.logs.count("lease="+ns+"/"+LeasePrefix+id+" ") == 0 {
					return false
				}
			}
		}
		return true
	})
	// A measuring window: two renew periods of evaluations.
	time.Sleep(2 * testRenew)
	for _, r := range reps {
		assert.Equal(t, []string{"a", "b", "c"}, identities(r.Members()), "%s lists no forged member", r.identity)
		assert.Equal(t, want, owners(r, ks), "%s keeps the owners", r.identity)
		for _, id := range forged {
			assert.Equal(t, 1, r.logs.count("lease="+ns+"/"+LeasePrefix+id+" "), "%s logs %s once", r.identity, id)
		}
	}
	members, err := Snapshot(t.Context(), cluster.Client, ns, "test", testToken)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, identities(members), "a snapshot lists no forged member either")
	members, err = Snapshot(t.Context(), cluster.Client, ns, "test", "guessed-token")
	require.NoError(t, err)
	assert.Equal(t, []string{"y"}, identities(members), "with another token, only what it signed verifies")
	_, err = Snapshot(t.Context(), cluster.Client, ns, "test", "")
	assert.ErrorContains(t, err, "no token")

	// The same Lease signed with the ring's token is a member: the
	// signature is what kept the others out. Written once, it expires.
	signed := signedLease("test", "w", "i-w", "http://w.test:8082", time.Now(), testLease)
	_, err = leases.Create(t.Context(), signed, metav1.CreateOptions{})
	require.NoError(t, err)
	waitMembers(t, testRenew, reps, "a", "b", "c", "w")
	waitMembers(t, 2*testLease, reps, "a", "b", "c")
}

// skewedClock is the real clock, off by skew.
type skewedClock struct {
	clock.RealClock
	skew time.Duration
}

func (c skewedClock) Now() time.Time                  { return time.Now().Add(c.skew) }
func (c skewedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func TestAReplicaWhoseClockIsElevenSecondsBehindIsAMemberLikeTheOthers(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := []*replica{join(t, ns, "a"), join(t, ns, "b"), join(t, ns, "c", func(o *Options) {
		o.Clock = skewedClock{skew: -11 * time.Second}
	})}
	waitMembers(t, testRenew, reps, "a", "b", "c")
	// A measuring window: a lease duration and a renewal in which nobody is dropped.
	for end := time.Now().Add(testLease + testRenew); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, r := range reps {
			require.Equal(t, []string{"a", "b", "c"}, identities(r.Members()), "%s keeps every member", r.identity)
		}
	}
	ks := keys(30)
	for _, r := range reps {
		assert.Equal(t, bruteOwners(ks, "a", "b", "c"), owners(r, ks), "%s agrees on the owners", r.identity)
	}
}
