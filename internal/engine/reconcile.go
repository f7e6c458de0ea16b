package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/render"
)

// fetch resolves a repository's head and returns the environments that have
// work: those behind the head, failed for a transient reason, or due a drift
// check. A failure to reach Git is transient.
func (e *Engine) fetch(ctx context.Context, name string) ([]string, error) {
	rs := e.repos[name]
	rs.mu.Lock()
	pushed := rs.pushed
	rs.pushed = false
	rs.mu.Unlock()
	start := time.Now()
	resolve := rs.spec.Source.Head
	if pushed {
		resolve = rs.spec.Source.Fetch
	}
	fetchCtx, cancel := context.WithTimeout(ctx, e.opts.FetchTimeout)
	head, err := resolve(fetchCtx)
	cancel()
	e.metrics.fetchDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("fetch %s: %w", name, err)
		rs.err = err.Error()
		// Every environment shows it: none can move until Git answers.
		for _, es := range rs.envs {
			es.mu.Lock()
			es.status.LastError = rs.err
			es.mu.Unlock()
		}
		e.log.Warn("fetch failed", "repo", name, "error", err)
		return nil, &retryError{err}
	}
	if head != rs.head {
		e.log.Info("new head", "repo", name, "revision", head)
	}
	rs.head, rs.fetched, rs.err = head, true, ""

	var work []string
	for _, env := range rs.spec.Environments {
		es := rs.envs[env.Name]
		es.mu.Lock()
		es.status.Head = head
		if es.applied != head || es.drift || (es.status.Phase == Failed && es.failedAt != head) {
			work = append(work, env.Name)
		}
		es.mu.Unlock()
	}
	return work, nil
}

// failure classes (STYLE.md): bad input is reported and not retried until the
// commit changes; transient failures retry with backoff; an unhealthy
// environment is retried by the next resync or commit.
type class int

const (
	terminal class = iota
	transientFailure
	unhealthy
)

// reconcile brings one environment to its repository's head: skip when the
// commit touched none of its inputs, else render, apply, wait until healthy
// and verify. force (ferry sync) does the whole pipeline whatever changed.
func (e *Engine) reconcile(ctx context.Context, es *envState, force bool) error {
	rs := es.repo
	rs.mu.Lock()
	head := rs.head
	rs.mu.Unlock()
	if head == "" {
		return nil
	}
	repo, env := rs.spec.Name, es.spec.Name
	inv := apply.Inventory{Repository: repo, Environment: env}

	es.mu.Lock()
	restored := es.restored
	es.mu.Unlock()
	if !restored {
		// After a restart the cluster says what was applied. Read outside the
		// lock: Status must not wait on the API server.
		revCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		rev, err := es.spec.Applier.Revision(revCtx, inv)
		cancel()
		if err == nil {
			es.mu.Lock()
			es.applied, es.status.Revision, es.restored = rev, rev, true
			es.mu.Unlock()
		}
	}

	es.mu.Lock()
	drift := es.drift || force
	es.drift = false
	applied, inputs, failedAt, phase := es.applied, es.inputs, es.failedAt, es.status.Phase
	es.mu.Unlock()

	switch {
	case head == failedAt && !force:
		return nil // bad input at this commit: wait for the next one
	case head == applied && !drift && phase != Failed:
		return nil
	case applied != "" && applied != head && inputs != nil && !drift && phase != Failed:
		changes, err := rs.spec.Source.Changed(ctx, applied, head)
		if err == nil && !changes.All && !touches(changes.Paths, inputs) {
			es.mu.Lock()
			es.applied, es.status.Revision = head, head
			es.mu.Unlock()
			e.metrics.skipped.WithLabelValues(repo, env).Inc()
			e.metrics.setInfo(repo, env, head, phase)
			e.log.Debug("no input changed", "repo", repo, "env", env, "revision", head)
			return nil
		}
	}

	gen := e.supersede(es)
	start := time.Now()
	applyCtx, cancel := context.WithTimeout(ctx, e.opts.ApplyTimeout)
	res, summary, class, err := e.renderAndApply(applyCtx, es, head, inv)
	cancel()
	if err != nil {
		return e.finish(es, gen, head, start, summary, class, err)
	}
	es.mu.Lock()
	es.applied, es.status.Revision = head, head
	es.mu.Unlock()
	e.setPhase(es, Waiting)
	if force {
		class, err := e.waitAndVerify(ctx, es, head, inv, res)
		return e.finish(es, gen, head, start, summary, class, err)
	}
	e.startWait(es, gen, head, inv, res, summary, start)
	return nil
}

// supersede starts a new reconcile generation for the environment: the
// pending health wait of an older one, if any, is cancelled, and only the
// outcome of this generation may be recorded from now on.
func (e *Engine) supersede(es *envState) uint64 {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.cancelWait != nil {
		es.cancelWait()
		es.cancelWait = nil
	}
	es.gen++
	return es.gen
}

// startWait waits for health and verifies on a goroutine of its own, so that
// an environment that takes long to become healthy (or never does) holds no
// worker.
func (e *Engine) startWait(es *envState, gen uint64, head string, inv apply.Inventory, res *render.Result, summary string, start time.Time) {
	ctx, cancel := context.WithCancel(e.waitCtx)
	es.mu.Lock()
	superseded := gen != es.gen
	if !superseded {
		es.cancelWait = cancel
	}
	es.mu.Unlock()
	if superseded {
		cancel()
		return
	}
	e.waits.Go(func() {
		defer cancel()
		class, err := e.waitAndVerify(ctx, es, head, inv, res)
		e.finish(es, gen, head, start, summary, class, err)
	})
}

// finish records the outcome of reconcile generation gen: status, history and
// metrics, unless a newer generation superseded it. It returns the error,
// marked for retry when transient.
func (e *Engine) finish(es *envState, gen uint64, head string, start time.Time, summary string, class class, err error) error {
	repo, env := es.repo.spec.Name, es.spec.Name
	es.mu.Lock()
	defer es.mu.Unlock()
	if gen != es.gen {
		return nil
	}
	result := "success"
	if err != nil {
		result = "failure"
	}
	e.metrics.reconcileDuration.WithLabelValues(repo, env, result).Observe(time.Since(start).Seconds())
	e.metrics.reconciles.WithLabelValues(repo, env, result).Inc()
	rec := Record{Revision: head, Result: result, Summary: summary, Started: start, Duration: time.Since(start)}
	es.status.LastReconcile = time.Now()
	if err != nil {
		rec.Error = err.Error()
		es.status.Phase, es.status.LastError = Failed, err.Error()
		if class == terminal {
			es.failedAt = head
		}
		es.status.record(rec)
		e.metrics.setInfo(repo, env, es.status.Revision, Failed)
		e.log.Error("reconcile failed", "repo", repo, "env", env, "revision", head, "error", err)
		if class == transientFailure {
			return &retryError{err}
		}
		return err
	}
	es.status.Phase, es.status.LastError, es.status.Health = Idle, "", HealthHealthy
	es.status.Revision, es.applied, es.failedAt = head, head, ""
	if summary != es.status.Summary || len(es.status.History) == 0 || es.status.History[len(es.status.History)-1].Revision != head {
		es.status.LastChange = time.Now()
	}
	es.status.Summary = summary
	es.status.record(rec)
	e.metrics.setInfo(repo, env, head, Idle)
	return nil
}

// renderAndApply renders the commit and applies it.
func (e *Engine) renderAndApply(ctx context.Context, es *envState, head string, inv apply.Inventory) (*render.Result, string, class, error) {
	repo, env := es.repo.spec.Name, es.spec.Name
	tree, err := es.repo.spec.Source.Checkout(ctx, head)
	if err != nil {
		return nil, "", transientFailure, err
	}
	defer tree.Release()

	e.setPhase(es, Rendering)
	res, err := e.opts.Renderer.Render(ctx, render.Request{Root: tree.Dir, Path: es.spec.Path})
	e.metrics.renders.WithLabelValues(repo, env).Inc()
	if err != nil {
		return nil, "", terminal, err
	}
	es.mu.Lock()
	es.inputs = make(map[string]bool, len(res.Inputs))
	for _, in := range res.Inputs {
		es.inputs[in] = true
	}
	es.mu.Unlock()

	e.setPhase(es, Applying)
	cs, err := es.spec.Applier.Apply(ctx, apply.Request{Inventory: inv, Revision: head, Objects: res.Objects, AllowMassDelete: e.opts.AllowMassDelete})
	summary := ""
	if cs != nil {
		summary = cs.Summary()
		for _, c := range cs.Changes {
			e.metrics.objectsApplied.WithLabelValues(string(c.Action)).Inc()
		}
		if cs.Changed() {
			e.log.Info("applied", "repo", repo, "env", env, "revision", head, "changes", summary)
		}
	}
	if err != nil {
		return nil, summary, classifyApply(err), err
	}
	return res, summary, terminal, nil
}

// waitAndVerify waits until the applied objects are healthy, then runs the
// Verifier. Either failing makes the environment unhealthy.
func (e *Engine) waitAndVerify(ctx context.Context, es *envState, head string, inv apply.Inventory, res *render.Result) (class, error) {
	report, err := es.spec.Applier.Wait(ctx, inv, res.Objects, e.opts.HealthTimeout)
	es.mu.Lock()
	es.status.Health = HealthHealthy
	if err != nil {
		es.status.Health = HealthUnhealthy
	}
	es.mu.Unlock()
	if err != nil {
		return unhealthy, fmt.Errorf("health: %w", err)
	}
	if e.opts.Verifier != nil {
		e.setPhase(es, Verifying)
		applied := Applied{Repository: es.repo.spec.Name, Environment: es.spec.Name, Revision: head, Result: res, Health: report}
		if err := e.opts.Verifier.Verify(ctx, applied); err != nil {
			return unhealthy, fmt.Errorf("verify: %w", err)
		}
	}
	return terminal, nil
}

func (e *Engine) setPhase(es *envState, p Phase) {
	es.mu.Lock()
	es.status.Phase = p
	rev := es.status.Revision
	es.mu.Unlock()
	e.metrics.setInfo(es.repo.spec.Name, es.spec.Name, rev, p)
}

// classifyApply: a mass delete or an object the API server refuses is bad
// input; anything else (a timeout, throttling, an unreachable server) is
// transient.
func classifyApply(err error) class {
	if _, ok := errors.AsType[*apply.MassDeleteError](err); ok {
		return terminal
	}
	var objErrs []*apply.ObjectError
	collect(err, &objErrs)
	if len(objErrs) == 0 {
		return transientFailure
	}
	for _, oe := range objErrs {
		if oe.Transient {
			return transientFailure
		}
	}
	return terminal
}

// collect gathers the ObjectErrors of a joined error tree.
func collect(err error, out *[]*apply.ObjectError) {
	if oe, ok := err.(*apply.ObjectError); ok {
		*out = append(*out, oe)
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			collect(e, out)
		}
	}
}

// touches reports whether any changed path is an input of the environment.
func touches(changed []string, inputs map[string]bool) bool {
	for _, p := range changed {
		if inputs[p] {
			return true
		}
	}
	return false
}
