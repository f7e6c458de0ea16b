package ring

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOwnersAreStableAcrossVersions(t *testing.T) {
	// Replicas of two versions share a ring during a rolling upgrade: a
	// change to the scores would make them disagree on most owners. These
	// values are SHA-256(identity NUL key)'s first 8 bytes.
	assert.Equal(t, uint64(0x7ca4dfa9f6a1edc6), weight("ferry-0", "models"))
	members := []Member{{Identity: "ferry-0"}, {Identity: "ferry-1"}, {Identity: "ferry-2"}}
	want := map[string]string{
		"repo-0": "ferry-0", "repo-1": "ferry-0", "repo-2": "ferry-0", "repo-3": "ferry-2",
		"repo-4": "ferry-1", "repo-5": "ferry-2", "repo-6": "ferry-0", "repo-7": "ferry-1",
	}
	for key, id := range want {
		assert.Equal(t, id, members[ownerIndex(key, members)].Identity, key)
	}
}

func TestRendezvousHashingMovesOnlyWhatItMust(t *testing.T) {
	ks := keys(3000)
	all := []string{"ferry-0", "ferry-1", "ferry-2", "ferry-3"}
	cases := []struct {
		name   string
		before []string
		after  []string
		// mayMove reports whether key, owned by from before, may change owner.
		mayMove func(from, to string) bool
		// about and within bound how many of the 3000 keys move: one
		// member's share of four is about a quarter.
		about, within float64
	}{{
		name:    "a member that leaves hands over only its own keys",
		before:  all,
		after:   []string{"ferry-0", "ferry-1", "ferry-3"},
		mayMove: func(from, to string) bool { return from == "ferry-2" },
		about:   750, within: 100,
	}, {
		name:    "a member that joins takes keys only for itself",
		before:  []string{"ferry-0", "ferry-1", "ferry-3"},
		after:   all,
		mayMove: func(from, to string) bool { return to == "ferry-2" },
		about:   750, within: 100,
	}, {
		name:    "the order members are listed in changes nothing",
		before:  all,
		after:   []string{"ferry-3", "ferry-1", "ferry-0", "ferry-2"},
		mayMove: func(from, to string) bool { return false },
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			moved := 0
			for _, k := range ks {
				from := tc.before[ownerIndexIDs(k, tc.before)]
				to := tc.after[ownerIndexIDs(k, tc.after)]
				if from != to {
					moved++
					assert.True(t, tc.mayMove(from, to), "%s moved from %s to %s", k, from, to)
				}
			}
			assert.InDelta(t, tc.about, moved, tc.within, "moved %d of %d", moved, len(ks))
		})
	}
}

func TestOwnershipSpreadsEvenly(t *testing.T) {
	for _, ids := range [][]string{{"a", "b", "c"}, {"ferry-0", "ferry-1", "ferry-2"}, {"ferry-7d9f8-x2kqp", "ferry-7d9f8-mz4tw", "ferry-7d9f8-9hb6c"}} {
		t.Run(fmt.Sprint(ids), func(t *testing.T) {
			slices.Sort(ids)
			count := map[string]int{}
			for _, k := range keys(3000) {
				count[ids[ownerIndexIDs(k, ids)]]++
			}
			for _, id := range ids {
				// 1000 ± 80 is about three standard deviations of Binomial(3000, 1/3).
				assert.InDelta(t, 1000, count[id], 80, "%s owns %d of 3000", id, count[id])
			}
		})
	}
}
