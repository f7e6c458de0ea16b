package ring

import (
	"crypto/sha256"
	"encoding/binary"
)

// weight is the rendezvous (highest-random-weight) score of identity for key:
// the first 8 bytes, big-endian, of SHA-256(identity NUL key). The key goes to
// the member with the highest score, so a member that leaves hands over only
// its own keys, each to the member that scores next on it, and one that joins
// takes only the keys it now scores highest on.
//
// SHA-256 because every replica, of every version, must compute the same
// scores: the function is fixed by a standard, unseeded (unlike hash/maphash),
// and spreads similar names ("ferry-0", "ferry-1") as evenly as random ones.
// Changing it reassigns most keys during a rolling upgrade, while old and new
// replicas disagree; TestOwnersAreStableAcrossVersions pins it. Identities
// are DNS labels, so the NUL separator makes the input unambiguous.
func weight(identity, key string) uint64 {
	buf := make([]byte, 0, len(identity)+1+len(key))
	buf = append(append(append(buf, identity...), 0), key...)
	sum := sha256.Sum256(buf)
	return binary.BigEndian.Uint64(sum[:8])
}

// ownerIndex returns the index in members of key's owner, or -1 when members
// is empty.
func ownerIndex(key string, members []Member) int {
	return highest(key, members, func(m Member) string { return m.Identity })
}

// ownerIndexIDs is ownerIndex over identities.
func ownerIndexIDs(key string, ids []string) int {
	return highest(key, ids, func(id string) string { return id })
}

// highest returns the index of the item whose identity scores highest for
// key. Ties (a 2^-64 event) go to the first listed; lists are sorted by
// identity, so every replica breaks them alike.
func highest[T any](key string, items []T, identity func(T) string) int {
	best, bestW := -1, uint64(0)
	for i, it := range items {
		if w := weight(identity(it), key); best < 0 || w > bestW {
			best, bestW = i, w
		}
	}
	return best
}
