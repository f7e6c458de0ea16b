package engine

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// class is a failure class (STYLE.md), named after what retries it.
type class int

const (
	// badInput: the commit is at fault (a broken kustomization, an object
	// the API server refuses, a failed test or check). Reported; retried
	// only when a new commit arrives.
	badInput class = iota
	// transient: Git, the cluster or GitHub did not answer as they should.
	// Retried with backoff.
	transient
	// waiting: something outside ferry is not ready yet (health, a person's
	// confirmation of a mass delete, a pending check). Retried by the next
	// resync, check event or commit.
	waiting
)

// classify says what retries a failure of step. Each package that produced
// the error answers for its own errors.
func classify(step Step, err error) class {
	switch step {
	case StepFetch:
		return transient
	case StepRender:
		if render.IsTransient(err) {
			return transient
		}
		return badInput
	case StepApply:
		if apply.IsMassDelete(err) {
			return waiting
		}
		if apply.IsTransient(err) {
			return transient
		}
		return badInput
	case StepHealth:
		return waiting
	case StepTests:
		if _, ok := errors.AsType[*testsFailed](err); ok {
			return badInput
		}
		if apply.IsTransient(err) {
			return transient
		}
		return badInput
	case StepChecks:
		switch {
		case isType[*checksFailed](err), isType[*noGitHub](err):
			return badInput
		case isType[*checksPending](err):
			return waiting
		case promote.IsTransient(err):
			return transient
		}
		return badInput
	case StepPromote:
		if errors.Is(err, source.ErrStale) || promote.IsTransient(err) || render.IsTransient(err) || isType[*gitError](err) {
			return transient
		}
		return badInput
	}
	return transient
}

func isType[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}

// outcome is how a reconcile generation ended.
type outcome struct {
	started time.Time
	summary string
	// step is the step that failed; "" when none did.
	step Step
	err  error
}

// finish records the outcome of reconcile generation gen — status, history,
// metrics and the commit status — unless a newer generation superseded it.
// It returns the error, marked for retry when transient.
func (e *Engine) finish(es *envState, gen uint64, o outcome) error {
	repo, env := es.repo.spec.Name, es.spec.Name
	es.mu.Lock()
	defer es.mu.Unlock()
	if gen != es.gen {
		return nil
	}
	defer es.changed()
	es.cancel = nil
	es.status.Waiting = ""
	revision := es.target
	result := "success"
	if o.err != nil {
		result = "failure"
	}
	e.metrics.reconcileDuration.WithLabelValues(repo, env, result).Observe(time.Since(o.started).Seconds())
	e.metrics.reconciles.WithLabelValues(repo, env, result).Inc()
	rec := Record{Revision: revision, Result: result, Step: o.step, Summary: o.summary, Started: o.started, Duration: time.Since(o.started)}
	es.status.LastReconcile = time.Now()
	if o.err != nil {
		c := classify(o.step, o.err)
		full := e.scrub(o.err.Error())
		msg := capError(full)
		rec.Error = msg
		es.status.Phase, es.status.FailedStep, es.status.LastError = Failed, o.step, msg
		if c == badInput && (o.step == StepRender || o.step == StepApply) {
			es.failedAt = revision
		}
		es.status.record(rec)
		state := promote.StateFailure
		if c == transient {
			state = promote.StateError
		}
		e.queueCommitStatus(es, revision, statusDone(state, string(o.step)+": "+msg))
		e.log.Error("reconcile failed", "repo", repo, "env", env, "revision", revision, "step", o.step, "error", full)
		if c == transient {
			return &retryError{o.err}
		}
		return o.err
	}
	es.status.Phase, es.status.FailedStep, es.status.LastError, es.status.Health = Idle, "", "", HealthHealthy
	es.status.Revision, es.failedAt = revision, ""
	if o.summary != es.status.Summary || len(es.status.History) == 0 || es.status.History[len(es.status.History)-1].Revision != revision {
		es.status.LastChange = time.Now()
	}
	es.status.Summary = o.summary
	es.status.record(rec)
	return nil
}

// maxStatusError bounds an error as a status, its history and a commit
// status carry it: a render refused for ten thousand objects names each, and
// statuses travel between replicas and to every dashboard. The log has it all.
const maxStatusError = 8 << 10

// capError cuts s to maxStatusError bytes, at a character boundary, saying
// how much it left out.
func capError(s string) string {
	if len(s) <= maxStatusError {
		return s
	}
	cut := maxStatusError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s … (%d more bytes in ferry's log)", s[:cut], len(s)-cut)
}
