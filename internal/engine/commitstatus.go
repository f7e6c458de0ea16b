package engine

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/ferry-gitops/ferry/internal/object"
	"github.com/ferry-gitops/ferry/promote"
)

// Commit statuses: each environment reports ferry/<environment> on the
// commit it reconciles — pending while it renders, applies, tests and waits
// for checks; success once healthy, tested and checked; failure (the commit
// is at fault) or error (ferry could not finish) naming the step. They are
// posted beside the pipeline by their own workers, so a slow or rate-limited
// GitHub never delays a reconcile; a newer state for the same commit replaces
// one not yet posted.

// commitState is a commit status's state and one-line description.
type commitState struct{ state, description string }

func statusPending(what string) commitState { return commitState{promote.StatePending, what} }

func statusDone(state, description string) commitState { return commitState{state, description} }

// maxPosted bounds how many commits' last statuses an environment remembers.
const maxPosted = 32

// commitStatus asks for the environment's status on commit sha to be s.
func (e *Engine) commitStatus(es *envState, sha string, s commitState) {
	es.mu.Lock()
	defer es.mu.Unlock()
	e.queueCommitStatus(es, sha, s)
}

// queueCommitStatus is commitStatus for a caller holding es.mu. It never
// blocks: outside Run (ferry sync, ferry promote) the status is posted by
// the caller's flush.
func (e *Engine) queueCommitStatus(es *envState, sha string, s commitState) {
	if es.repo.spec.GitHub == nil || sha == "" {
		if !es.repo.statusesOff.Swap(true) {
			e.log.Debug("commit statuses off: the repository has no GitHub configured", "repo", es.repo.spec.Name)
		}
		return
	}
	cs := promote.CommitStatus{
		SHA: sha, Context: "ferry/" + es.spec.Name, State: s.state,
		Description: promote.Describe(s.description), TargetURL: e.opts.StatusURL,
	}
	if es.posted[sha] == cs || es.statuses[sha] == cs {
		return
	}
	es.statuses[sha] = cs
	e.github.Add(key{statusKey, es.repo.spec.Name, es.spec.Name})
}

// supersededStatus closes a commit's pending status when a newer commit
// replaced it before it finished. Callers hold es.mu.
func (e *Engine) supersededStatus(es *envState, old, newer string) {
	last, ok := es.statuses[old]
	if !ok {
		last, ok = es.posted[old]
	}
	if ok && last.State == promote.StatePending {
		e.queueCommitStatus(es, old, statusDone(promote.StateError, "superseded by "+object.ShortSHA(newer)+" before it finished"))
	}
}

// nextStatus posts one environment's queued commit statuses; false once the
// queue has shut down. A transient failure requeues them with backoff.
func (e *Engine) nextStatus(ctx context.Context) bool {
	k, quit := e.github.Get()
	if quit {
		return false
	}
	defer e.github.Done(k)
	if e.postStatuses(ctx, e.repos[k.repo].envs[k.env]) {
		e.github.Forget(k)
	} else if !e.github.ShuttingDown() {
		e.github.AddRateLimited(k)
	}
	return true
}

// postStatuses posts the environment's queued statuses, oldest commit first,
// and reports whether none is left to retry.
func (e *Engine) postStatuses(ctx context.Context, es *envState) bool {
	es.mu.Lock()
	queued := maps.Clone(es.statuses)
	es.mu.Unlock()
	done := true
	for _, sha := range slices.Sorted(maps.Keys(queued)) {
		s := queued[sha]
		postCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := es.repo.spec.GitHub.SetStatus(postCtx, s)
		cancel()
		if err != nil && promote.IsTransient(err) {
			done = false
			e.log.Warn("commit status failed, retrying", "repo", es.repo.spec.Name, "env", es.spec.Name, "revision", sha, "error", e.scrub(err.Error()))
			continue
		}
		if err != nil {
			e.log.Error("commit status refused", "repo", es.repo.spec.Name, "env", es.spec.Name, "revision", sha, "error", e.scrub(err.Error()))
		}
		es.mu.Lock()
		if es.statuses[sha] == s {
			delete(es.statuses, sha)
		}
		if len(es.posted) >= maxPosted {
			clear(es.posted)
		}
		es.posted[sha] = s
		es.mu.Unlock()
	}
	return done
}

// flushStatuses posts what is queued, in the foreground: the way out for
// ferry sync and ferry promote, which run without Run's workers.
func (e *Engine) flushStatuses(ctx context.Context) {
	for _, rs := range e.repos {
		if rs.spec.GitHub == nil {
			continue
		}
		for _, es := range rs.envs {
			e.postStatuses(ctx, es)
		}
	}
}
