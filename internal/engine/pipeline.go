package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
)

// pipeline is the steps after a successful apply, for one reconcile
// generation: health, then — once per revision — tests, required checks and
// promotion. It runs beside the workers, so an environment that takes long
// to become healthy, or waits for a check, holds no worker. Transient
// failures of a step are retried inside the step, with backoff, without
// rendering or applying again.
type pipeline struct {
	e        *Engine
	es       *envState
	gen      uint64
	started  time.Time
	revision string // the commit this generation applied
	res      *render.Result
	summary  string
	// listed is the objects' readiness as the apply listed it when it
	// changed nothing; all Current, it stands for the health wait.
	listed *apply.HealthReport
	health *apply.HealthReport
}

func (p *pipeline) run(ctx context.Context) error {
	es := p.es
	report, err := p.listed, error(nil)
	if report == nil || !report.Healthy() {
		// Something was written, or is not ready yet: watch until it is.
		// An idle drift check skips this: its LIST said every object is.
		p.e.setPhase(es, p.gen, Waiting)
		report, err = es.spec.Applier.Wait(ctx, es.inventory(), p.res.Objects, apply.WaitOptions{
			Timeout:       p.e.opts.HealthTimeout,
			ProgressEvery: p.e.opts.ProgressEvery,
			Progress: func(r *apply.HealthReport) {
				es.update(p.gen, func() { es.status.Waiting = p.e.scrub(notCurrent(r)) })
			},
		})
	}
	if ctx.Err() != nil {
		return nil // superseded, or shutting down: a newer generation records
	}
	p.health = report
	es.update(p.gen, func() {
		es.status.Waiting = ""
		es.status.Health = HealthHealthy
		if err != nil {
			es.status.Health = HealthUnhealthy
		}
	})
	if err != nil {
		return p.finish(StepHealth, fmt.Errorf("health: %w", err))
	}

	rev, ok := es.current(p.gen)
	if !ok || !p.stillOwner() {
		return nil
	}
	es.mu.Lock()
	v := es.verified
	es.mu.Unlock()
	if v.Revision != rev {
		v = apply.Verification{Revision: rev}
	}
	es.mu.Lock()
	settled := es.settled(rev)
	es.mu.Unlock()
	switch {
	case settled && v.Reason != "":
		// This revision already failed a step after health: report it again,
		// never run it again (a drift check, a restart).
		return p.finish(Step(v.Step), errors.New(v.Reason))
	case settled:
		return p.finish("", nil)
	case !v.Passed:
		if step, err := p.verify(ctx, &v); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if classify(step, err) == badInput {
				v.Reason, v.Step = err.Error(), string(step)
				p.save(ctx, v)
			}
			return p.finish(step, err)
		}
		v.Passed = true
		p.save(ctx, v)
		p.e.commitStatus(es, rev, statusDone(promote.StateSuccess, p.successDescription(v)))
	}
	if es.spec.PromoteTo == "" {
		return p.finish("", nil)
	}
	if !p.stillOwner() {
		return nil
	}
	if err := p.promote(ctx, &v); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return p.finish(StepPromote, err)
	}
	v.Promoted = true
	p.save(ctx, v)
	return p.finish("", nil)
}

// stillOwner reports whether this replica still owns the repository: a
// pipeline whose repository another replica took over stops between steps,
// and the new owner runs the steps again (they are idempotent).
func (p *pipeline) stillOwner() bool {
	if p.e.opts.Ring == nil {
		return true
	}
	owned, _ := p.e.opts.Ring.May(p.es.repo.spec.Name)
	return owned
}

// verify runs the tests and reads the required checks of v.Revision,
// recording their results in v; it returns the step that failed.
func (p *pipeline) verify(ctx context.Context, v *apply.Verification) (Step, error) {
	p.e.setPhase(p.es, p.gen, Testing)
	p.e.commitStatus(p.es, v.Revision, statusPending("testing"))
	tests, err := p.tests(ctx, v.Revision)
	v.Tests = tests
	p.es.update(p.gen, func() { p.es.status.Tests = tests })
	if err != nil {
		return StepTests, err
	}

	p.e.setPhase(p.es, p.gen, Checking)
	checks, err := p.checks(ctx, v.Revision)
	v.Checks = nil
	for _, c := range checks {
		v.Checks = append(v.Checks, apply.CheckOutcome{Name: c.Name, State: c.State})
	}
	if err != nil {
		return StepChecks, err
	}
	v.Time = time.Now()
	return "", nil
}

// save records v on the inventory, so a restart does not run its steps
// again; failing to is logged, not fatal (the steps are idempotent).
func (p *pipeline) save(ctx context.Context, v apply.Verification) {
	es := p.es
	if !p.stillOwner() {
		return // the new owner verifies again; its record must not be overwritten
	}
	if !es.update(p.gen, func() {
		es.verified = v
		if v.Passed {
			es.status.Verified = v.Revision
		}
	}) {
		return
	}
	if v.Time.IsZero() {
		v.Time = time.Now()
	}
	if err := es.spec.Applier.SaveVerification(ctx, es.inventory(), v); err != nil {
		p.e.log.Warn("record verification failed", "repo", es.repo.spec.Name, "env", es.spec.Name, "revision", v.Revision, "error", p.e.scrub(err.Error()))
	}
}

func (p *pipeline) successDescription(v apply.Verification) string {
	d := "healthy"
	if n := len(v.Tests); n > 0 {
		d += fmt.Sprintf(", %d test(s) passed", n)
	}
	if n := len(v.Checks); n > 0 {
		d += fmt.Sprintf(", %d required check(s) green", n)
	}
	return d
}

// finish records the pipeline's outcome, if its generation is still the
// newest.
func (p *pipeline) finish(step Step, err error) error {
	return p.e.finish(p.es, p.gen, outcome{started: p.started, summary: p.summary, step: step, err: err})
}

// retry calls fn until it succeeds, fails for a reason that is not transient,
// or ctx ends. Between transient failures it waits with backoff (0.5 s
// doubling to 5 min, ±20 %), and the status shows the failure meanwhile.
func (p *pipeline) retry(ctx context.Context, step Step, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || classify(step, err) != transient {
			return err
		}
		wait := stepBackoff(attempt)
		msg := p.e.scrub(err.Error())
		p.es.update(p.gen, func() {
			p.es.status.LastError = fmt.Sprintf("%s: %s (retrying in %s)", step, msg, wait.Round(time.Millisecond))
		})
		p.e.log.Warn("step failed, retrying", "repo", p.es.repo.spec.Name, "env", p.es.spec.Name, "step", step, "error", msg, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func stepBackoff(attempt int) time.Duration {
	d := 500 * time.Millisecond
	for range min(attempt, 10) {
		d *= 2
	}
	return jitterDuration(min(d, 5*time.Minute))
}

// notCurrent says which objects a health wait still waits for, and why.
func notCurrent(r *apply.HealthReport) string {
	var parts []string
	for _, h := range r.Objects {
		if h.Status != apply.Current {
			parts = append(parts, h.String())
		}
	}
	return strings.Join(parts, "; ")
}
