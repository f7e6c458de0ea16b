package ring

import (
	"context"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// sim drives a Ring's view by hand: Leases it makes up, a fake clock, and
// evaluations where the running ring would have its watch and timer.
type sim struct {
	r      *Ring
	clk    *clocktesting.FakeClock
	leases map[string]*coordinationv1.Lease
	// stalled, when not nil, is what the watch cache shows: a copy taken
	// when the watch stalled.
	stalled []*coordinationv1.Lease
	logs    *logBuffer
}

const simLease, simRenew = 15 * time.Second, 5 * time.Second

func newSim(t *testing.T, self string) *sim {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	logs := &logBuffer{}
	r, err := New(Options{Client: &kubernetes.Clientset{}, Token: testToken, Identity: self, LeaseDuration: simLease, Clock: clk, Logger: logs.logger()})
	require.NoError(t, err)
	s := &sim{r: r, clk: clk, leases: map[string]*coordinationv1.Lease{}, logs: logs}
	r.mu.Lock()
	r.running, r.runCtx = true, t.Context()
	r.leases = func() []*coordinationv1.Lease {
		if s.stalled != nil {
			return s.stalled
		}
		var out []*coordinationv1.Lease
		for _, l := range s.leases {
			out = append(out, l)
		}
		return out
	}
	r.mu.Unlock()
	return s
}

// renew writes renewTime=now to the Leases of ids, as their replicas would.
func (s *sim) renew(ids ...string) *sim {
	for _, id := range ids {
		s.renewBy(id, 0)
	}
	return s.eval()
}

// renewBy writes the Lease of id as its replica would with a clock skew
// ahead of this one's (behind when negative); eval shows it.
func (s *sim) renewBy(id string, skew time.Duration) *sim {
	now := s.clk.Now().Add(skew)
	if id == s.r.identity {
		s.leases[id] = s.r.desired(nil, now)
		s.r.renewed(now)
	} else {
		s.leases[id] = signedLease("ferry", id, "proc-"+id, "", now, simLease)
	}
	return s
}

// stall freezes what the watch shows (nil: it catches up again).
func (s *sim) stall(on bool) *sim {
	s.stalled = nil
	if on {
		for _, l := range s.leases {
			s.stalled = append(s.stalled, l)
		}
	}
	return s.eval()
}

// leave deletes the Leases of ids.
func (s *sim) leave(ids ...string) *sim {
	for _, id := range ids {
		delete(s.leases, id)
	}
	return s.eval()
}

// run lets d pass with every replica in ids renewing on time.
func (s *sim) run(d time.Duration, ids ...string) *sim {
	for ; d > 0; d -= simRenew {
		s.clk.Step(min(d, simRenew))
		s.renew(ids...)
	}
	return s
}

func (s *sim) step(d time.Duration) *sim {
	s.clk.Step(d)
	return s.eval()
}

func (s *sim) eval() *sim {
	s.r.mu.Lock()
	s.r.evaluateLocked(s.clk.Now())
	s.r.mu.Unlock()
	return s
}

// signedLease is the member Lease of id in ring as a replica of process
// instance holding testToken writes it.
func signedLease(ring, id, instance, address string, renewTime time.Time, d time.Duration) *coordinationv1.Lease {
	renewTime = renewTime.Truncate(time.Microsecond)
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        LeasePrefix + id,
			Labels:      map[string]string{RingLabel: ring},
			Annotations: map[string]string{InstanceAnnotation: instance},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(id),
			LeaseDurationSeconds: ptr.To(int32(d / time.Second)),
			RenewTime:            &metav1.MicroTime{Time: renewTime},
		},
	}
	if address != "" {
		l.Annotations[AddressAnnotation] = address
	}
	v := leaseView{identity: id, address: address, instance: instance, renewTime: renewTime, duration: d}
	l.Annotations[SignatureAnnotation] = hex.EncodeToString(leaseSignature(testToken, ring, v))
	return l
}

// logBuffer collects what a Ring logs, as text lines.
type logBuffer struct{ testenv.LogBuffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// count returns how many lines logged contain s.
func (b *logBuffer) count(s string) int { return strings.Count(b.String(), s) }

func TestMayWaitsUntilThisReplicaHasOwnedAKeyForOneLeaseDuration(t *testing.T) {
	owner := func(k string, ids ...string) string { return bruteOwners([]string{k}, ids...)[k] }
	// Keys chosen for who owns them as a, b and c come and go.
	ofAEither := findKey(t, func(k string) bool { return owner(k, "a", "b") == "a" && owner(k, "a", "b", "c") == "a" })
	ofBThenA := findKey(t, func(k string) bool { return owner(k, "a", "b") == "b" })
	ofAThenC := findKey(t, func(k string) bool { return owner(k, "a", "b") == "a" && owner(k, "a", "b", "c") == "c" })

	cases := []struct {
		name      string
		key       string
		script    func(*sim)
		wantOwned bool
		wantAfter time.Duration
	}{{
		name:   "a replica that just joined waits one lease duration for its keys",
		key:    ofAEither,
		script: func(s *sim) { s.renew("a", "b") },
		// Its own start is ownership's start: it cannot know who held the key before.
		wantOwned: true, wantAfter: simLease,
	}, {
		name:      "a replica that has owned a key for one lease duration may mutate it",
		key:       ofAEither,
		script:    func(s *sim) { s.renew("a", "b").run(simLease, "a", "b") },
		wantOwned: true, wantAfter: 0,
	}, {
		name:      "a key kept through a membership change needs no new wait",
		key:       ofAEither,
		script:    func(s *sim) { s.renew("a", "b").run(simLease, "a", "b").renew("c") },
		wantOwned: true, wantAfter: 0,
	}, {
		name: "a key taken over from a member that left is mutable at once",
		key:  ofBThenA,
		// b deleted its Lease once it had stopped.
		script:    func(s *sim) { s.renew("a", "b").run(simLease, "a", "b").leave("b") },
		wantOwned: true, wantAfter: 0,
	}, {
		name: "a key taken over from a member whose Lease expired is mutable at once",
		key:  ofBThenA,
		// b stopped mutating RenewEvery before its Lease expired.
		script:    func(s *sim) { s.renew("a", "b").run(simLease, "a", "b").run(simLease, "a") },
		wantOwned: true, wantAfter: 0,
	}, {
		name:      "a replica that starts alone waits for nobody",
		key:       ofAEither,
		script:    func(s *sim) { s.renew("a") },
		wantOwned: true, wantAfter: 0,
	}, {
		name:      "a replica that starts beside a member takes that member's key at once when it leaves",
		key:       ofBThenA,
		script:    func(s *sim) { s.renew("a", "b").step(time.Second).leave("b") },
		wantOwned: true, wantAfter: 0,
	}, {
		name:      "a key another member owns is not ours",
		key:       ofAThenC,
		script:    func(s *sim) { s.renew("a", "b").run(simLease, "a", "b").renew("c") },
		wantOwned: false, wantAfter: 0,
	}, {
		name: "a key lost to a member that joined, and won back when it left, is mutable at once",
		key:  ofAThenC,
		script: func(s *sim) {
			s.renew("a", "b").run(simLease, "a", "b").renew("c").run(simRenew, "a", "b", "c").leave("c")
		},
		wantOwned: true, wantAfter: 0,
	}, {
		name: "a replica whose renewal is stale may not mutate, and asks again after a renew period",
		key:  ofAEither,
		script: func(s *sim) {
			s.renew("a", "b").run(simLease, "a", "b").run(simLease-simRenew, "b")
		},
		wantOwned: true, wantAfter: simRenew,
	}, {
		name: "a replica whose renewals fail may until its watch has not shown one for the view window",
		key:  ofAEither,
		script: func(s *sim) {
			s.renew("a", "b").run(simLease, "a", "b").step(s.r.viewWindow() - time.Millisecond)
		},
		wantOwned: true, wantAfter: 0,
	}, {
		name: "a replica whose watch has not shown its renewals for the view window starts nothing new",
		key:  ofAEither,
		script: func(s *sim) {
			s.renew("a", "b").run(simLease, "a", "b").step(s.r.viewWindow())
		},
		wantOwned: true, wantAfter: simRenew,
	}, {
		name: "a replica whose own Lease expired waits again once it renews",
		key:  ofAEither,
		script: func(s *sim) {
			s.renew("a", "b").run(simLease, "a", "b").run(simLease, "b").renew("a")
		},
		wantOwned: true, wantAfter: simLease,
	}, {
		name:      "a replica that sees no member owns nothing",
		key:       ofAEither,
		script:    func(s *sim) { s.eval() },
		wantOwned: false, wantAfter: 0,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, "a")
			tc.script(s)
			owned, after := s.r.May(tc.key)
			assert.Equal(t, tc.wantOwned, owned, "owned")
			assert.Equal(t, tc.wantAfter, after, "after")
		})
	}
}

func TestAMemberFlappingFasterThanTheHistoryKeepsOnlyLengthensTheWait(t *testing.T) {
	s := newSim(t, "a").renew("a", "b").run(simLease, "a", "b")
	owner := func(k string, ids ...string) string { return bruteOwners([]string{k}, ids...)[k] }
	lostAndWon := findKey(t, func(k string) bool { return owner(k, "a", "b") == "a" && owner(k, "a", "b", "c") == "c" })
	kept := findKey(t, func(k string) bool { return owner(k, "a", "b") == "a" && owner(k, "a", "b", "c") == "a" })
	owned, after := s.r.May(kept)
	require.True(t, owned)
	require.Zero(t, after, "before the flapping, a may mutate its key")

	for range 10 * maxEpochs {
		s.renew("c").step(time.Millisecond).leave("c").step(time.Millisecond)
	}
	assert.LessOrEqual(t, len(s.r.epochs), maxEpochs, "the history is bounded")
	owned, after = s.r.May(lostAndWon)
	assert.True(t, owned)
	assert.Zero(t, after, "a key c held a moment ago is a's at once: c left, after it stopped")
	owned, after = s.r.May(kept)
	assert.True(t, owned)
	assert.Positive(t, after, "with its history cut short, a waits even for a key it kept: longer, never shorter")
}

func TestTheFenceClosesWhenTheLeaseGoesStaleAndStaysClosed(t *testing.T) {
	s := newSim(t, "a").renew("a")
	fence := s.r.Fence(t.Context())
	require.NoError(t, fence.Err(), "open while fresh")

	s.step(simLease - simRenew - time.Millisecond)
	assert.NoError(t, fence.Err(), "still open a moment before its renewal is stale")
	s.step(time.Millisecond)
	select {
	case <-fence.Done():
	case <-time.After(time.Second):
		t.Fatal("the fence did not close once the renewal was stale")
	}
	assert.ErrorIs(t, context.Cause(fence), ErrFenced, "closed once stale, RenewEvery before the Lease expires")
	assert.ErrorIs(t, context.Cause(s.r.Fence(t.Context())), ErrFenced, "a new fence is closed at once")

	s.renew("a")
	assert.ErrorIs(t, context.Cause(fence), ErrFenced, "a renewal does not revive an old fence")
	assert.NoError(t, s.r.Fence(t.Context()).Err(), "a new fence is open again")

	parent, cancel := context.WithCancel(t.Context())
	child := s.r.Fence(parent)
	cancel()
	assert.ErrorIs(t, child.Err(), context.Canceled, "a fence ends with its parent too")
	assert.NoError(t, s.r.Fence(t.Context()).Err(), "and the ring's fence stays open")
}
