package engine

import (
	"context"
	"sync"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
)

// envState is what the engine knows of one environment. Every field after mu
// is guarded by it.
type envState struct {
	repo *repoState
	spec Environment
	// changed tells subscribers the status changed; callers may hold mu.
	changed func()

	mu       sync.Mutex
	status   Status
	applied  string          // the revision whose objects are in the cluster
	restored bool            // applied and verified were read back from the cluster
	inputs   map[string]bool // the last render's input set
	failedAt string          // a commit whose render or apply was refused: not retried until the head moves
	drift    bool            // a resync asked for a drift check
	// verified is how far the steps after health got for verified.Revision.
	verified apply.Verification

	// gen counts reconciles that reached render. Only the newest generation
	// may record an outcome, so an older commit's steps never overwrite a
	// newer commit's result.
	gen uint64
	// target is the revision generation gen brings the environment to. A
	// commit that touches none of the environment's inputs moves it forward
	// without a new generation.
	target string
	cancel context.CancelFunc // ends the steps after apply of generation gen
	checks chan struct{}      // wakes a wait for required checks

	// Commit statuses to post, and the last posted, by commit (commitstatus.go).
	statuses map[string]promote.CommitStatus
	posted   map[string]promote.CommitStatus
}

func newEnvState(rs *repoState, env Environment, changed func()) *envState {
	return &envState{
		repo:    rs,
		spec:    env,
		changed: changed,
		status: Status{
			Repository: rs.spec.Name, Environment: env.Name, PromoteTo: env.PromoteTo,
			Phase: Idle, Health: HealthUnknown,
		},
		checks:   make(chan struct{}, 1),
		statuses: map[string]promote.CommitStatus{},
		posted:   map[string]promote.CommitStatus{},
	}
}

// update runs fn under the lock if generation gen is still the newest, and
// reports whether it did.
func (es *envState) update(gen uint64, fn func()) bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	if gen != es.gen {
		return false
	}
	fn()
	es.changed()
	return true
}

// current returns the revision generation gen brings the environment to, and
// false once a newer generation superseded it.
func (es *envState) current(gen uint64) (string, bool) {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.target, gen == es.gen
}

// settled reports whether every step after health has run for rev, with
// success or for good. Callers hold es.mu.
func (es *envState) settled(rev string) bool {
	v := es.verified
	return v.Revision == rev && (v.Reason != "" || (v.Passed && (v.Promoted || es.spec.PromoteTo == "")))
}

// signalChecks wakes a wait for required checks, if there is one; it never blocks.
func (es *envState) signalChecks() {
	select {
	case es.checks <- struct{}{}:
	default:
	}
}

// forget drops what this replica learnt of the environment by working on it
// (the applier's cached inventory, what was applied and verified, the last
// input set, a refused commit): when its repository moves to another replica
// and back, the other may have applied meanwhile, and the next reconcile
// reads it all again from the cluster.
func (es *envState) forget() {
	es.spec.Applier.Forget(es.inventory())
	es.mu.Lock()
	defer es.mu.Unlock()
	es.restored, es.applied, es.inputs, es.failedAt = false, "", nil, ""
	es.verified = apply.Verification{}
}
