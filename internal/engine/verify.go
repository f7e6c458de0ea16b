package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
)

// testsFailed is a test that did not pass: the revision does not move on.
type testsFailed struct{ failed []apply.TestResult }

func (e *testsFailed) Error() string {
	parts := make([]string, len(e.failed))
	for i, t := range e.failed {
		parts[i] = t.String()
	}
	return strings.Join(parts, "; ")
}

// checksFailed is a required check that failed.
type checksFailed struct{ failed promote.Checks }

func (e *checksFailed) Error() string { return "required check failed: " + e.failed.Names() }

// checksPending is a required check still not green when the wait ended.
type checksPending struct {
	waiting promote.Checks
	after   time.Duration
}

func (e *checksPending) Error() string {
	return fmt.Sprintf("required checks still not green after %s: %s; ferry reads them again on the next check event or resync", e.after, e.waiting.Names())
}

// noGitHub is a Model that requires checks in a repository without GitHub.
type noGitHub struct{ checks []string }

func (e *noGitHub) Error() string {
	return fmt.Sprintf("the models require checks %s, but the repository has no GitHub configured (github in ferry.yaml, with a token): configure it or remove promotion.requiredChecks", strings.Join(e.checks, ", "))
}

// tests runs the revision's tests as Jobs and returns their results; an error
// when one failed, or when they could not be run.
func (p *pipeline) tests(ctx context.Context, rev string) ([]apply.TestResult, error) {
	if len(p.res.Tests) == 0 {
		return nil, nil
	}
	jobs, err := render.Jobs(p.res.Tests, rev)
	if err != nil {
		return nil, err
	}
	longest := time.Duration(0)
	names := make([]string, len(p.res.Tests))
	for i, t := range p.res.Tests {
		longest = max(longest, t.Timeout)
		names[i] = t.Model + "/" + t.Name
	}
	p.es.update(p.gen, func() { p.es.status.Waiting = "tests running: " + strings.Join(names, ", ") })
	var report *apply.TestReport
	err = p.retry(ctx, StepTests, func(ctx context.Context) error {
		var err error
		report, err = p.es.spec.Applier.RunTests(ctx, apply.TestRequest{
			Inventory: p.es.inventory(), Revision: rev, Jobs: jobs, Timeout: longest + p.e.opts.TestGrace,
		})
		return err
	})
	if err != nil {
		if report != nil {
			return report.Results, err
		}
		return nil, err
	}
	if failed := report.Failed(); len(failed) > 0 {
		return report.Results, &testsFailed{failed: failed}
	}
	return report.Results, nil
}

// requiredChecks is the union of the Models' promotion.requiredChecks. A
// commit is verified as a whole: one failing check stops its promotion.
func requiredChecks(res *render.Result) []string {
	var names []string
	for _, m := range res.Models {
		if m.Spec.Promotion != nil {
			names = append(names, m.Spec.Promotion.RequiredChecks...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// checks reads the required checks of rev until none is pending, one
// failed, or ChecksTimeout passed. Pending checks are read again on a check
// event (NotifyChecks), a resync, or every ChecksPoll.
func (p *pipeline) checks(ctx context.Context, rev string) (promote.Checks, error) {
	names := requiredChecks(p.res)
	if len(names) == 0 {
		return nil, nil
	}
	gh := p.es.repo.spec.GitHub
	if gh == nil {
		return nil, &noGitHub{checks: names}
	}
	deadline := time.NewTimer(p.e.opts.ChecksTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(p.e.opts.ChecksPoll)
	defer poll.Stop()
	for {
		var checks promote.Checks
		err := p.retry(ctx, StepChecks, func(ctx context.Context) error {
			var err error
			checks, err = gh.RequiredChecks(ctx, rev, names)
			return err
		})
		if err != nil {
			return nil, err
		}
		p.es.update(p.gen, func() { p.es.status.Checks = checks })
		if failed := checks.Failed(); len(failed) > 0 {
			return checks, &checksFailed{failed: failed}
		}
		waiting := checks.Waiting()
		if len(waiting) == 0 {
			return checks, nil
		}
		p.e.commitStatus(p.es, rev, statusPending("waiting for "+waiting.Names()))
		p.es.update(p.gen, func() { p.es.status.Waiting = "required checks: " + waiting.Names() })
		select {
		case <-p.es.checks:
		case <-poll.C:
		case <-deadline.C:
			return checks, &checksPending{waiting: waiting, after: p.e.opts.ChecksTimeout}
		case <-ctx.Done():
			return checks, ctx.Err()
		}
	}
}
