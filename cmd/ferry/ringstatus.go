package main

import (
	"context"
	"encoding/json"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/ring"
)

// statusResponse is the body of /api/v1/status.
type statusResponse struct {
	Environments []environmentStatus `json:"environments"`
	// Members are the ring's live members as the replica that answered saw
	// them, and Unreachable those of them that did not answer it; both are
	// empty without coordination.
	Members     []string      `json:"members,omitempty"`
	Unreachable []unreachable `json:"unreachable,omitempty"`
}

// environmentStatus is one environment's status as its owner reports it.
type environmentStatus struct {
	engine.Status
	// Owner is the member that owns the environment's repository; empty
	// without coordination.
	Owner string `json:"owner,omitempty"`
	// OwnerUnreachable is set when the owner did not answer: the status then
	// carries only the environment's names.
	OwnerUnreachable bool `json:"ownerUnreachable,omitempty"`
}

// unreachable is a member that did not answer a status fan-out, and why.
type unreachable struct {
	Member string `json:"member"`
	Error  string `json:"error"`
}

// localStatus is one replica's own statuses, without owners.
func localStatus(statuses []engine.Status) statusResponse {
	out := statusResponse{Environments: make([]environmentStatus, len(statuses))}
	for i, s := range statuses {
		out.Environments[i] = environmentStatus{Status: s}
	}
	return out
}

// ownStatus is what this replica answers other members: the environments of
// the repositories it owns, no others (they would only add to an answer
// bounded by ring.MaxStatusBytes).
func (r *replica) ownStatus(statuses []engine.Status) statusResponse {
	self := r.ring.Self().Identity
	var out []engine.Status
	for _, s := range statuses {
		if owner, ok := r.ring.Owner(s.Repository); ok && owner.Identity == self {
			out = append(out, s)
		}
	}
	return localStatus(out)
}

// fanOut bounds the status requests to other members in flight at once.
const fanOut = 8

// status is every environment of the ring, each as its owner reports it:
// this replica's own for the repositories it owns, and for the others one
// request per live member, fanOut at once, each bounded by ring.StatusTimeout.
// A member that does not answer is listed in Unreachable, and its
// environments are marked OwnerUnreachable. Before this replica has seen the
// ring, it answers with its own statuses and no owners.
func (r *replica) status(ctx context.Context, local []engine.Status) statusResponse {
	members := r.ring.Members()
	if len(members) == 0 {
		return localStatus(local)
	}
	self := r.ring.Self().Identity
	out := statusResponse{Environments: make([]environmentStatus, 0, len(local))}

	type answer struct {
		statuses map[engine.EnvironmentKey]engine.Status
		err      error
	}
	answers := make(map[string]*answer, len(members))
	var g errgroup.Group
	g.SetLimit(fanOut)
	for _, m := range members {
		out.Members = append(out.Members, m.Identity)
		if m.Identity == self {
			continue
		}
		a := &answer{}
		answers[m.Identity] = a
		g.Go(func() error { a.statuses, a.err = r.memberStatus(ctx, m); return nil })
	}
	g.Wait()
	for _, m := range members {
		if a := answers[m.Identity]; a != nil && a.err != nil {
			out.Unreachable = append(out.Unreachable, unreachable{Member: m.Identity, Error: a.err.Error()})
		}
	}

	for _, s := range local {
		owner, _ := ring.OwnerAmong(members, s.Repository)
		es := environmentStatus{Status: s, Owner: owner.Identity}
		if owner.Identity != self {
			a := answers[owner.Identity]
			theirs, ok := a.statuses[engine.EnvironmentKey{Repository: s.Repository, Environment: s.Environment}]
			if a.err != nil || !ok {
				theirs = engine.Status{Repository: s.Repository, Environment: s.Environment, PromoteTo: s.PromoteTo}
				es.OwnerUnreachable = a.err != nil
			}
			es.Status = theirs
		}
		out.Environments = append(out.Environments, es)
	}
	return out
}

// memberStatus is member m's own statuses, by environment.
func (r *replica) memberStatus(ctx context.Context, m ring.Member) (map[engine.EnvironmentKey]engine.Status, error) {
	b, err := ring.FetchStatus(ctx, r.client, m, r.token)
	if err != nil {
		return nil, err
	}
	var theirs statusResponse
	if err := json.Unmarshal(b, &theirs); err != nil {
		return nil, fmt.Errorf("member %s: status: %w", m.Identity, err)
	}
	out := make(map[engine.EnvironmentKey]engine.Status, len(theirs.Environments))
	for _, s := range theirs.Environments {
		out[engine.EnvironmentKey{Repository: s.Repository, Environment: s.Environment}] = s.Status
	}
	return out, nil
}
