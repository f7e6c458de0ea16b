package ring

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// leaseInstance returns the instance annotation on the Lease of id in ns as
// the API server holds it, "" when there is none.
func leaseInstance(t *testing.T, ns, id string) string {
	t.Helper()
	l, err := cluster.Client.CoordinationV1().Leases(ns).Get(t.Context(), LeasePrefix+id, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return l.Annotations[InstanceAnnotation]
}

// fenceOpen reports whether a fence r gives now is open.
func fenceOpen(t *testing.T, r *replica) bool {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	return r.Fence(ctx).Err() == nil
}

func TestAReplicaWhoseLeaseIsDeletedByAnotherStopsAtOnceAndRejoinsByRenewing(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b")
	a := reps[0]
	fence := a.Fence(t.Context())
	require.NoError(t, fence.Err(), "a works")

	deleted := time.Now()
	require.NoError(t, cluster.Client.CoordinationV1().Leases(ns).Delete(t.Context(), LeasePrefix+"a", metav1.DeleteOptions{}))
	closed := eventually(t, testRenew, "a's fence closes", func() bool { return fence.Err() != nil })
	assert.Less(t, closed.Sub(deleted), testRenew/2, "when the watch shows the delete, not at a's next renewal")
	assert.ErrorIs(t, context.Cause(fence), ErrFenced)

	// a is back once a renewal of its own, sent after it saw the delete, succeeds.
	eventually(t, 2*testRenew, "a holds its Lease again and works", func() bool {
		return leaseInstance(t, ns, "a") == a.instance && fenceOpen(t, a)
	})
	waitMembers(t, testRenew, reps, "a", "b")
	assert.ErrorIs(t, context.Cause(fence), ErrFenced, "a renewal does not revive the old fence")
	assert.Equal(t, 1, a.logs.count("ring lease lost"), a.logs.String())
}

func TestAReplicaWhoseLeaseIsRewrittenByAnotherProcessStopsAndLeavesItAloneUntilItExpires(t *testing.T) {
	ns := cluster.Namespace(t)
	reps := joinAll(t, ns, "a", "b")
	a := reps[0]
	fence := a.Fence(t.Context())
	require.NoError(t, fence.Err(), "a works")
	ofA := findKey(t, func(k string) bool { return bruteOwners([]string{k}, "a", "b")[k] == "a" })

	// Another process with identity a writes the Lease once (kubectl exec …
	// ferry sync as the pod, a second StatefulSet in the same ring).
	leases := cluster.Client.CoordinationV1().Leases(ns)
	var written time.Time
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := leases.Get(t.Context(), LeasePrefix+"a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		written = time.Now()
		other := signedLease("test", "a", "intruder", "http://elsewhere.test:8082", written, testLease)
		other.ResourceVersion = cur.ResourceVersion
		_, err = leases.Update(t.Context(), other, metav1.UpdateOptions{})
		return err
	}))
	closed := eventually(t, testRenew, "a's fence closes", func() bool { return fence.Err() != nil })
	assert.Less(t, closed.Sub(written), testRenew/2, "when the watch shows the rewrite")
	owned, _ := a.May(ofA)
	assert.False(t, owned, "a is no member while another process holds its Lease")
	eventually(t, 2*testRenew, "a says why", func() bool { return a.logs.count("identity collision") > 0 })
	assert.Contains(t, a.logs.String(), "lease=ferry-member-a")

	// a does not write over a live Lease of another process; once nobody
	// renews it, a takes it back.
	took := eventually(t, 3*testLease, "a holds its Lease again and works", func() bool {
		return leaseInstance(t, ns, "a") == a.instance && fenceOpen(t, a)
	})
	assert.GreaterOrEqual(t, took.Sub(written), testLease, "a waited for the other's Lease to expire")
	assert.Equal(t, 1, a.logs.count("identity collision"), "said once per other process: %s", a.logs)
}

func TestOfTwoProcessesWithOneIdentityExactlyOneWorks(t *testing.T) {
	t.Run("one started beside a working one waits", func(t *testing.T) {
		ns := cluster.Namespace(t)
		reps := joinAll(t, ns, "a", "b")
		first := reps[0]
		fence := first.Fence(t.Context())
		require.NoError(t, fence.Err())
		ofA := findKey(t, func(k string) bool { return bruteOwners([]string{k}, "a", "b")[k] == "a" })

		second := join(t, ns, "a")
		eventually(t, 2*testRenew, "the second says why it waits", func() bool { return second.logs.count("identity collision") > 0 })
		assert.Contains(t, second.logs.String(), "lease=ferry-member-a")
		// A measuring window: longer than a lease duration of both running,
		// so the second would have taken over a Lease it judged expired.
		for end := time.Now().Add(testLease + testRenew); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			require.False(t, fenceOpen(t, second), "the second never works")
			owned, _ := second.May(ofA)
			require.False(t, owned)
		}
		assert.NoError(t, fence.Err(), "the first worked throughout")
		assert.Equal(t, first.instance, leaseInstance(t, ns, "a"))
		assert.Equal(t, 1, second.logs.count("identity collision"), second.logs.String())

		// When the first leaves, the second takes its place.
		require.NoError(t, first.stop())
		eventually(t, 2*testRenew, "the second works", func() bool {
			return leaseInstance(t, ns, "a") == second.instance && fenceOpen(t, second)
		})
	})
	t.Run("of two started at once one works", func(t *testing.T) {
		ns := cluster.Namespace(t)
		both := []*replica{join(t, ns, "c"), join(t, ns, "c")}
		working := func() []int {
			var out []int
			for i, r := range both {
				if fenceOpen(t, r) {
					out = append(out, i)
				}
			}
			return out
		}
		eventually(t, testLease, "one works", func() bool { return len(working()) == 1 })
		winner := working()[0]
		for end := time.Now().Add(testLease + testRenew); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			require.Equal(t, []int{winner}, working(), "the same one, alone")
		}
		assert.Equal(t, both[winner].instance, leaseInstance(t, ns, "c"))
		assert.True(t, slices.ContainsFunc(both, func(r *replica) bool { return r.logs.count("identity collision") > 0 }))
	})
}
