package ring

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAPartitionedReplicaStopsMutatingBeforeItsLeaseExpires(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")
	a, c := reps[0], reps[2]
	key := findKey(t, func(k string) bool { return bruteOwners([]string{k}, "a", "b", "c")[k] == "c" })
	eventually(t, testLease+time.Second, "c may mutate its key", func() bool {
		owned, after := c.May(key)
		return owned && after == 0
	})
	fence := c.Fence(t.Context())
	require.NoError(t, fence.Err(), "the fence is open while c renews")
	var fencedAt atomic.Pointer[time.Time]
	context.AfterFunc(fence, func() { now := time.Now(); fencedAt.Store(&now) })

	c.link.cut.Store(true)
	stopped := eventually(t, testLease, "c stops mutating", func() bool {
		owned, after := c.May(key)
		return owned && after > 0
	})
	eventually(t, testLease, "c's fence closes", func() bool { return fencedAt.Load() != nil })
	assert.ErrorIs(t, context.Cause(fence), ErrFenced)

	l, err := cluster.Client.CoordinationV1().Leases(ns).Get(t.Context(), "ferry-member-c", metav1.GetOptions{})
	require.NoError(t, err)
	expires := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	seen := memberNamed(a.Members(), "c")
	assert.WithinRange(t, seen.Expires, expires, expires.Add(300*time.Millisecond),
		"a counts c's Lease from when it saw c's last renewal, a moment after c wrote it")
	assert.GreaterOrEqual(t, expires.Sub(*fencedAt.Load()), testRenew/2,
		"the fence closed at %s, well before the Lease expires at %s", fencedAt.Load(), expires)
	assert.GreaterOrEqual(t, expires.Sub(stopped), testRenew/2,
		"May refused at %s, well before the Lease expires at %s", stopped, expires)
	assert.ErrorIs(t, context.Cause(c.Fence(t.Context())), ErrFenced, "a new fence is closed at once while stale")
	t.Logf("fence closed %s and May refused %s before the Lease expired",
		expires.Sub(*fencedAt.Load()).Round(time.Millisecond), expires.Sub(stopped).Round(time.Millisecond))

	// Once its Lease has expired for everyone, the others own its key; when
	// c heals, it waits a lease duration again before mutating.
	waitMembers(t, testLease, reps[:2], "a", "b")
	c.link.cut.Store(false)
	eventually(t, 2*testLease, "c owns its key again", func() bool {
		owned, _ := c.May(key)
		return owned && len(a.Members()) == 3
	})
	_, after := c.May(key)
	assert.Greater(t, after, testLease/2, "a replica back from a partition waits before mutating again")
}

func TestANewOwnerWaitsOnlyWhileThePreviousOwnerMayStillMutate(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b", "c")
	a, b, c := reps[0], reps[1], reps[2]
	takenOver := findKey(t, func(k string) bool {
		return bruteOwners([]string{k}, "a", "b", "c")[k] == "c" && bruteOwners([]string{k}, "a", "b")[k] == "a"
	})
	kept := findKey(t, func(k string) bool { return bruteOwners([]string{k}, "a", "b", "c")[k] == "a" })

	owned, after := a.May(kept)
	assert.True(t, owned)
	assert.Positive(t, after, "a replica that joined beside others waits before its first mutation")
	eventually(t, testLease+time.Second, "a may mutate the key it has owned since it joined", func() bool {
		owned, after := a.May(kept)
		return owned && after == 0
	})

	// c leaves gracefully: it stopped before deleting its Lease, so a takes
	// its key at once.
	require.NoError(t, c.stop())
	eventually(t, testRenew, "a takes over c's key and may mutate it at once", func() bool {
		owned, after := a.May(takenOver)
		return owned && after == 0
	})
	owned, after = a.May(kept)
	assert.True(t, owned)
	assert.Zero(t, after, "a key a already owned needs no new wait")
	owned, _ = b.May(takenOver)
	assert.False(t, owned, "b does not own it")

	// c comes back: a, alive, owned the key, so c waits one lease duration,
	// long enough for a to see c and stop starting work on it.
	c = join(t, ns, "c")
	var wait time.Duration
	took := eventually(t, testLease, "c takes its key back", func() bool {
		owned, wait = c.May(takenOver)
		return owned
	})
	assert.InDelta(t, testLease, wait, float64(300*time.Millisecond), "the new owner waits one lease duration for the live previous owner")
	eventually(t, testRenew, "a sees c and lets the key go", func() bool {
		owned, _ := a.May(takenOver)
		return !owned
	})
	mayAt := eventually(t, 2*testLease, "c may mutate the key it took back", func() bool {
		owned, after := c.May(takenOver)
		return owned && after == 0
	})
	assert.InDelta(t, testLease, float64(mayAt.Sub(took)), float64(300*time.Millisecond), "one lease duration after it took the key")
}

// findKey returns the first key repo-<n> for which match holds.
func findKey(t *testing.T, match func(string) bool) string {
	t.Helper()
	for i := range 1000 {
		if k := fmt.Sprintf("repo-%d", i); match(k) {
			return k
		}
	}
	t.Fatal("no key matches")
	return ""
}

func memberNamed(ms []Member, id string) Member {
	for _, m := range ms {
		if m.Identity == id {
			return m
		}
	}
	return Member{}
}
