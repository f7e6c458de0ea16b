package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/object"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// gitError is a Git operation of a promotion that failed (a fetch, a push):
// transient, as the network and the remote are.
type gitError struct{ err error }

func (e *gitError) Error() string { return e.err.Error() }
func (e *gitError) Unwrap() error { return e.err }

// promote runs the promote step of the pipeline: each model whose pin in the
// target environment differs from the one it passed with here is carried
// there, on its own branch and (by default) pull request. Transient failures
// are retried with backoff; nothing is rendered into or applied to this
// environment again.
func (p *pipeline) promote(ctx context.Context, v *apply.Verification) error {
	es := p.es
	p.e.setPhase(es, p.gen, Promoting)
	var promotions []Promotion
	err := p.retry(ctx, StepPromote, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, p.e.opts.PromoteTimeout)
		defer cancel()
		var err error
		promotions, err = p.e.promoteEnvironment(ctx, es, v.Revision, p.res, evidenceOf(v, p.health), "")
		return err
	})
	es.update(p.gen, func() { es.status.Promotions = promotions })
	return err
}

// promoteEnvironment promotes the Models of es (rendered as res at revision
// rev) into es's promotion target, all of them or only the one named model.
// It is safe to run again at any point, after a crash as after a success: a
// branch that already carries the change is not pushed again, and the pull
// request is looked up before one is opened.
func (e *Engine) promoteEnvironment(ctx context.Context, es *envState, rev string, res *render.Result, ev promote.Evidence, model string) ([]Promotion, error) {
	target := es.repo.envs[es.spec.PromoteTo]
	if target == nil {
		return nil, fmt.Errorf("%s/%s: promoteTo %q is not an environment of the repository", es.repo.spec.Name, es.spec.Name, es.spec.PromoteTo)
	}
	return e.promoteInto(ctx, es, target, rev, res, ev, model)
}

func (e *Engine) promoteInto(ctx context.Context, es, target *envState, rev string, res *render.Result, ev promote.Evidence, model string) ([]Promotion, error) {
	src := es.repo.spec.Source
	tree, err := src.Checkout(ctx, rev)
	if err != nil {
		return nil, &gitError{err}
	}
	before, err := e.opts.Renderer.Render(ctx, render.Request{Root: tree.Dir, Path: target.spec.Path, Key: es.repo.spec.Name + "/" + target.spec.Name})
	tree.Release()
	if err != nil {
		return nil, fmt.Errorf("render %s at %s: %w", target.spec.Name, object.ShortSHA(rev), err)
	}

	moves, missing := promote.Decide(pinsOf(res), pinsOf(before))
	var out []Promotion
	for _, name := range missing {
		if model == "" || model == name {
			out = append(out, Promotion{Model: name, To: target.spec.Name, Action: "skipped",
				Skipped: fmt.Sprintf("%s does not declare %s; add it there before it can be promoted", target.spec.Name, name)})
		}
	}
	var errs []error
	for _, m := range moves {
		if model != "" && m.After.Model != model {
			continue
		}
		ev := ev
		ev.From, ev.To, ev.Before, ev.After, ev.Commit = es.spec.Name, target.spec.Name, m.Before, m.After, rev
		pr, err := e.promoteModel(ctx, es, target, rev, before, ev)
		if err != nil {
			errs = append(errs, fmt.Errorf("promote %s to %s: %w", m.After.Model, target.spec.Name, err))
			continue
		}
		out = append(out, pr)
		e.log.Info("promoted", "repo", es.repo.spec.Name, "env", es.spec.Name, "model", m.After.Model, "to", target.spec.Name,
			"version", m.After.Version, "action", pr.Action, "pr", pr.PR)
	}
	return out, errors.Join(errs...)
}

// promoteModel writes one model's pin into the target's pin file on the
// model's promotion branch, pushes it with a lease when it does not carry
// that change yet, and ensures the pull request.
func (e *Engine) promoteModel(ctx context.Context, es, target *envState, rev string, before *render.Result, ev promote.Evidence) (Promotion, error) {
	src := es.repo.spec.Source
	pinPath := path.Join(target.spec.Path, PinFile)
	branch := promote.Branch(ev.After.Model, target.spec.Name)
	out := Promotion{Model: ev.After.Model, Version: ev.After.Version, To: target.spec.Name, Branch: branch}

	current, err := src.ReadFile(ctx, rev, pinPath)
	if err != nil {
		return out, fmt.Errorf("read %s: %w", pinPath, err)
	}
	edited, err := promote.EditPin(pinPath, current, ev.After)
	if errors.Is(err, promote.ErrNotPinned) {
		out.Action, out.Skipped = "skipped", fmt.Sprintf("%s has no Model patch for %s; add one to pin its version there", pinPath, ev.After.Model)
		return out, nil
	}
	if err != nil {
		return out, err
	}

	head, err := src.FetchBranch(ctx, branch)
	if err != nil {
		return out, &gitError{err}
	}
	carries, err := branchCarries(ctx, src, head, pinPath, current, edited)
	if err != nil {
		return out, &gitError{err}
	}
	out.Action = "unchanged"
	if !carries {
		head, err = src.Commit(ctx, source.Change{
			Branch: branch, Base: rev, Files: map[string][]byte{pinPath: edited},
			Message: fmt.Sprintf("%s\n\n%s passed in %s at %s.\n", promote.Title(ev.After.Model, ev.After.Version, target.spec.Name),
				ev.After.Model, es.spec.Name, rev),
		})
		if err != nil {
			return out, err
		}
		if err := src.Push(ctx, branch); err != nil {
			return out, &gitError{err}
		}
		out.Action = "pushed"
	}
	out.Commit = head

	if es.spec.Promotion == PromoteBranch {
		return out, nil
	}
	gh := es.repo.spec.GitHub
	if gh == nil {
		return out, errors.New("promotion by pull request needs GitHub configured for the repository (github and auth in ferry.yaml); or set promotion: branch")
	}
	ev.Diff, ev.DiffError = e.targetDiff(ctx, src, target, head, before)
	pr, err := gh.EnsurePullRequest(ctx, promote.PullRequest{
		Head: branch, Base: es.repo.spec.Branch, HeadSHA: head,
		Title: promote.Title(ev.After.Model, ev.After.Version, target.spec.Name), Body: promote.Body(ev),
	})
	if err != nil {
		return out, err
	}
	out.PR, out.URL, out.Action = pr.Number, pr.URL, string(pr.Action)
	return out, nil
}

// branchCarries reports whether the promotion branch at head already holds
// exactly the change: one commit, changing only the pin file from current to
// edited. Pushing again would only churn the pull request. A branch that
// holds anything else is replaced.
func branchCarries(ctx context.Context, src gitRepo, head, pinPath string, current, edited []byte) (bool, error) {
	if head == "" {
		return false, nil
	}
	parents, err := src.Parents(ctx, head)
	if err != nil {
		return false, err
	}
	if len(parents) != 1 {
		return false, nil
	}
	ours, errOurs := src.ReadFile(ctx, head, pinPath)
	base, errBase := src.ReadFile(ctx, parents[0], pinPath)
	if errOurs != nil || errBase != nil || !bytes.Equal(ours, edited) || !bytes.Equal(base, current) {
		return false, nil
	}
	changes, err := src.Changed(ctx, parents[0], head)
	if err != nil {
		return false, err
	}
	return slices.Equal(changes.Paths, []string{pinPath}), nil
}

// targetDiff renders the target at the promotion commit and compares it with
// its render before, for the pull request. A failure is said in the PR
// rather than failing the promotion.
func (e *Engine) targetDiff(ctx context.Context, src gitRepo, target *envState, head string, before *render.Result) ([]promote.ObjectChange, string) {
	tree, err := src.Checkout(ctx, head)
	if err != nil {
		return nil, err.Error()
	}
	defer tree.Release()
	after, err := e.opts.Renderer.Render(ctx, render.Request{Root: tree.Dir, Path: target.spec.Path, Key: target.repo.spec.Name + "/" + target.spec.Name + "@promotion"})
	if err != nil {
		return nil, err.Error()
	}
	return objectChanges(object.Diff(before.Objects, after.Objects)), ""
}

func objectChanges(diffs []object.Change) []promote.ObjectChange {
	out := make([]promote.ObjectChange, len(diffs))
	for i, d := range diffs {
		out[i] = promote.ObjectChange{Ref: d.Ref, Action: string(d.Action), Diff: d.Diff}
	}
	return out
}

func pinsOf(res *render.Result) []promote.Pin {
	out := make([]promote.Pin, len(res.Models))
	for i, m := range res.Models {
		out[i] = promote.Pin{Model: m.Name, Version: m.Spec.Version, URI: m.Spec.Artifact.URI, Digest: m.Spec.Artifact.Digest}
	}
	return out
}

// evidenceOf is what a promotion pull request shows of a verification.
func evidenceOf(v *apply.Verification, health *apply.HealthReport) promote.Evidence {
	var ev promote.Evidence
	if health != nil {
		ev.Health = fmt.Sprintf("healthy, %d object(s) Current", len(health.Objects))
	}
	for _, t := range v.Tests {
		ev.Tests = append(ev.Tests, promote.TestOutcome{Name: t.Model + "/" + t.Test, Passed: t.Passed, Duration: t.Duration, Reason: t.Reason})
	}
	for _, c := range v.Checks {
		ev.Checks = append(ev.Checks, promote.Check{Name: c.Name, State: c.State})
	}
	if !v.Time.IsZero() {
		ev.Health += " (verified " + v.Time.UTC().Format(time.RFC3339) + ")"
	}
	return ev
}

// PromoteRequest is one promotion run by hand (ferry promote).
type PromoteRequest struct {
	// Repository is ferry's name for it; "" when there is only one.
	Repository string
	// Model is the model to promote; "" promotes every model that differs.
	Model string
	// From is the environment the model passed in; To the one it moves to
	// ("" means From's promoteTo).
	From, To string
	// Force promotes Git's head without asking the cluster whether From
	// passed there: the pull request's diff is Git against Git.
	Force bool
}

// Promote runs the promote step once, in the foreground. Without Force it
// promotes the revision From was last verified at, as its inventory says,
// and refuses when that verification did not pass.
func (e *Engine) Promote(ctx context.Context, req PromoteRequest) ([]Promotion, error) {
	rs, err := e.repository(req.Repository)
	if err != nil {
		return nil, err
	}
	from := rs.envs[req.From]
	if from == nil {
		return nil, fmt.Errorf("%s: no environment %q", rs.spec.Name, req.From)
	}
	toName := cmp.Or(req.To, from.spec.PromoteTo)
	to := rs.envs[toName]
	switch {
	case toName == "":
		return nil, fmt.Errorf("%s/%s promotes nowhere: give --to, or set promoteTo in ferry.yaml", rs.spec.Name, req.From)
	case to == nil:
		return nil, fmt.Errorf("%s: no environment %q", rs.spec.Name, toName)
	case to == from:
		return nil, fmt.Errorf("%s/%s cannot promote into itself", rs.spec.Name, req.From)
	}

	head, err := rs.spec.Source.Head(ctx)
	if err != nil {
		return nil, err
	}
	rev, ev := head, promote.Evidence{Health: "not verified: promoted with --force"}
	if !req.Force {
		v, err := from.spec.Applier.Verification(ctx, from.inventory())
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s/%s: read its verification from the cluster (or promote with --force): %w", rs.spec.Name, req.From, err)
		case v == nil:
			return nil, fmt.Errorf("%s/%s has not been verified in its cluster yet; wait for ferry serve or ferry sync, or promote with --force", rs.spec.Name, req.From)
		case !v.Passed:
			return nil, fmt.Errorf("%s/%s did not pass at %s (%s); fix it, or promote with --force", rs.spec.Name, req.From, object.ShortSHA(v.Revision), v.Reason)
		}
		rev, ev = v.Revision, evidenceOf(v, nil)
	}

	tree, err := rs.spec.Source.Checkout(ctx, rev)
	if err != nil {
		return nil, err
	}
	res, err := e.opts.Renderer.Render(ctx, render.Request{Root: tree.Dir, Path: from.spec.Path})
	tree.Release()
	if err != nil {
		return nil, err
	}
	if req.Model != "" && !slices.ContainsFunc(res.Models, func(m *render.Model) bool { return m.Name == req.Model }) {
		return nil, fmt.Errorf("%s/%s has no model %q at %s", rs.spec.Name, req.From, req.Model, object.ShortSHA(rev))
	}
	return e.promoteInto(ctx, from, to, rev, res, ev, req.Model)
}

// repository finds a repository by name, or the only one when name is "".
func (e *Engine) repository(name string) (*repoState, error) {
	if name == "" && len(e.repos) == 1 {
		for _, rs := range e.repos {
			return rs, nil
		}
	}
	rs, ok := e.repos[name]
	if !ok {
		return nil, fmt.Errorf("no repository %q in ferry.yaml (give --repository when there are several)", name)
	}
	return rs, nil
}
