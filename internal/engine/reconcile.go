package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/render"
)

// fetch resolves a repository's head and returns the environments that have
// work: those behind the head, failed, or due a drift check. A failure to
// reach Git is transient, and shown on every environment of the repository.
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
		rs.err = e.scrub(err.Error())
		for _, es := range rs.envs {
			es.mu.Lock()
			es.status.LastError = rs.err
			es.changed()
			es.mu.Unlock()
		}
		e.metrics.fetchFailures.WithLabelValues(name).Inc()
		e.log.Warn("fetch failed", "repo", name, "error", rs.err)
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
		if es.status.Head != head {
			es.status.Head = head
			es.changed()
		}
		if es.applied != head || es.drift || (es.status.Phase == Failed && es.failedAt != head) {
			work = append(work, env.Name)
		}
		es.mu.Unlock()
	}
	return work, nil
}

// decision is what a reconcile does, decided from what the engine knows.
type decision int

const (
	// upToDate: the head is reconciled and nothing asks for a check.
	upToDate decision = iota
	// refused: the head's render or apply was refused as bad input; only a
	// new commit can fix it.
	refused
	// askGit: a new commit; if it touches none of the environment's inputs,
	// the environment moves to it without rendering.
	askGit
	// run: render, apply and the steps after.
	run
)

// view is the part of an environment's state a decision reads.
type view struct {
	head, applied, failedAt string
	knowInputs              bool
	drift, failed, force    bool
}

func decide(v view) decision {
	switch {
	case v.head == "":
		return upToDate
	case v.force:
		return run
	case v.head == v.failedAt:
		return refused
	case v.head == v.applied && !v.drift && !v.failed:
		return upToDate
	case v.applied != "" && v.knowInputs && !v.drift && !v.failed:
		return askGit
	default:
		return run
	}
}

// reconcile brings one environment to its repository's head: skip when the
// commit touched none of its inputs, else render, apply, and hand the steps
// after apply (health, tests, checks, promotion) to a pipeline of their own.
// force (ferry sync) runs everything, in the foreground.
func (e *Engine) reconcile(ctx context.Context, es *envState, force bool) error {
	head := es.repo.currentHead()
	if head == "" {
		return nil
	}
	e.restore(ctx, es)

	es.mu.Lock()
	v := view{
		head: head, applied: es.applied, failedAt: es.failedAt, knowInputs: es.inputs != nil,
		drift: es.drift, failed: es.status.Phase == Failed, force: force,
	}
	es.drift = false
	inputs := es.inputs
	es.mu.Unlock()

	switch decide(v) {
	case upToDate, refused:
		return nil
	case askGit:
		changes, err := es.repo.spec.Source.Changed(ctx, v.applied, head)
		if err == nil && !changes.All && !touches(changes.Paths, inputs) {
			e.moveWithoutRender(es, v.applied, head)
			return nil
		}
	}

	gen := e.supersede(es, head)
	start := time.Now()
	es.mu.Lock()
	if !es.settled(head) {
		// A drift check of a commit whose steps all ran says nothing new.
		e.queueCommitStatus(es, head, statusPending("rendering"))
	}
	es.mu.Unlock()
	applyCtx, cancel := context.WithTimeout(ctx, e.opts.ApplyTimeout)
	done, step, err := e.renderAndApply(applyCtx, es, gen, head)
	res, summary := done.res, done.summary
	cancel()
	if err != nil {
		return e.finish(es, gen, outcome{started: start, summary: summary, step: step, err: err})
	}
	es.update(gen, func() {
		es.applied, es.status.Revision, es.status.Summary = head, head, summary
		es.status.Models = modelVersions(res)
	})
	p := &pipeline{e: e, es: es, gen: gen, started: start, revision: head, res: res, summary: summary, listed: done.health}
	if force {
		return p.run(ctx)
	}
	pctx, cancelSteps := context.WithCancel(e.pipeCtx)
	pctx = e.fence(pctx)
	if !es.update(gen, func() { es.cancel = cancelSteps }) {
		cancelSteps()
		return nil
	}
	e.pipelines.Go(func() {
		defer cancelSteps()
		p.run(pctx)
	})
	return nil
}

// restore reads what a previous process applied and verified back from the
// cluster, once, after a start. It reads outside the lock: Status must not
// wait on the API server.
func (e *Engine) restore(ctx context.Context, es *envState) {
	es.mu.Lock()
	restored := es.restored
	es.mu.Unlock()
	if restored {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inv := es.inventory()
	rev, err := es.spec.Applier.Revision(ctx, inv)
	if err != nil {
		return
	}
	v, err := es.spec.Applier.Verification(ctx, inv)
	if err != nil {
		return
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	defer es.changed()
	es.applied, es.status.Revision, es.restored = rev, rev, true
	if v != nil && v.Revision == rev {
		es.verified = *v
		es.status.Tests = v.Tests
		if v.Passed {
			es.status.Verified = rev
		}
	}
}

// moveWithoutRender moves an environment from one commit to a newer one that
// touches none of its inputs. A pipeline still running for the old commit now
// stands for the new one (it has the same objects), so it records the new
// revision rather than setting the environment back.
func (e *Engine) moveWithoutRender(es *envState, from, to string) {
	repo, env := es.repo.spec.Name, es.spec.Name
	es.mu.Lock()
	if es.applied == from {
		es.applied = to
	}
	if es.target == from {
		es.target = to
	}
	if es.verified.Revision == from {
		es.verified.Revision = to
		if es.verified.Passed {
			es.status.Verified = to
		}
	}
	es.status.Revision = to
	es.changed()
	es.mu.Unlock()
	e.metrics.skipped.WithLabelValues(repo, env).Inc()
	e.log.Debug("no input changed", "repo", repo, "env", env, "revision", to)
}

// supersede starts a new reconcile generation for the environment, bringing
// it to revision: the pending steps of an older one, if any, are cancelled,
// and only this generation may record an outcome from now on.
func (e *Engine) supersede(es *envState, revision string) uint64 {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.cancel != nil {
		es.cancel()
		es.cancel = nil
	}
	if old := es.target; old != "" && old != revision {
		e.supersededStatus(es, old, revision)
	}
	es.gen++
	es.target = revision
	es.status.FailedStep = ""
	es.changed()
	return es.gen
}

// applied is what renderAndApply did.
type applied struct {
	res     *render.Result
	summary string
	// health is the objects' readiness when the apply changed nothing and
	// knew it from its LIST (apply.ChangeSet.Health); nil otherwise.
	health *apply.HealthReport
}

// renderAndApply renders the commit and applies it, and says which step
// failed when one did.
func (e *Engine) renderAndApply(ctx context.Context, es *envState, gen uint64, head string) (applied, Step, error) {
	repo, env := es.repo.spec.Name, es.spec.Name
	tree, err := es.repo.spec.Source.Checkout(ctx, head)
	if err != nil {
		return applied{}, StepFetch, err
	}
	defer tree.Release()

	e.setPhase(es, gen, Rendering)
	res, err := e.opts.Renderer.Render(ctx, render.Request{Root: tree.Dir, Path: es.spec.Path, Key: repo + "/" + env})
	e.metrics.renders.WithLabelValues(repo, env).Inc()
	if err != nil {
		return applied{}, StepRender, err
	}
	es.update(gen, func() {
		es.inputs = make(map[string]bool, len(res.Inputs))
		for _, in := range res.Inputs {
			es.inputs[in] = true
		}
	})

	e.setPhase(es, gen, Applying)
	cs, err := es.spec.Applier.Apply(ctx, apply.Request{Inventory: es.inventory(), Revision: head, Objects: res.Objects, AllowMassDelete: e.opts.AllowMassDelete, Policy: es.spec.Policy})
	var out applied
	if cs != nil {
		out.summary, out.health = cs.Summary(), cs.Health
		for _, c := range cs.Changes {
			e.metrics.objectsApplied.WithLabelValues(string(c.Action)).Inc()
		}
		if cs.Changed() {
			e.log.Info("applied", "repo", repo, "env", env, "revision", head, "changes", out.summary)
		}
	}
	if err != nil {
		return applied{summary: out.summary}, StepApply, err
	}
	out.res = res
	return out, "", nil
}

func (e *Engine) setPhase(es *envState, gen uint64, p Phase) {
	es.update(gen, func() { es.status.Phase = p })
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

func modelVersions(res *render.Result) []ModelVersion {
	out := make([]ModelVersion, len(res.Models))
	for i, m := range res.Models {
		out[i] = ModelVersion{Name: m.Name, Version: m.Spec.Version}
	}
	return out
}
