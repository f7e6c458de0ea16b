package preview

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// The preview talks to its parts through these interfaces, each cut to the
// calls it makes; cmd/ferry hands it the real ones.

// pullSource fetches pull requests read-only and reads what it fetched;
// *source.PullRequests is one. It has no way to push.
type pullSource interface {
	Fetch(ctx context.Context, number int) (source.Pull, error)
	FetchRefs(ctx context.Context, names ...string) ([]string, error)
	MergeBase(ctx context.Context, a, b string) (string, error)
	Changed(ctx context.Context, from, to string) (*source.Changes, error)
	Checkout(ctx context.Context, sha string) (*source.Tree, error)
}

// renderer builds an environment; *render.Renderer is one.
type renderer interface {
	Render(ctx context.Context, req render.Request) (*render.Result, error)
}

// differ dry-runs an environment against its cluster; *apply.Applier is one.
type differ interface {
	Diff(ctx context.Context, req apply.Request) ([]apply.ObjectDiff, error)
}

// forge is where a preview is posted; *promote.GitHub is one.
type forge interface {
	SetStatus(ctx context.Context, s promote.CommitStatus) error
	UpsertComment(ctx context.Context, number int, marker, body string) (promote.CommentResult, error)
}

var (
	_ pullSource = (*source.PullRequests)(nil)
	_ renderer   = (*render.Renderer)(nil)
	_ differ     = (*apply.Applier)(nil)
	_ forge      = (*promote.GitHub)(nil)
)

// Repository is a tracked repository as previews see it.
type Repository struct {
	Name string
	// Branch is the tracked branch: only pull requests into it are previewed.
	Branch string
	// Source fetches pull requests with read-only credentials.
	Source pullSource
	// GitHub, when set, receives the preview comment and status. Leave it
	// nil (not a typed nil pointer) for a repository without GitHub: the
	// Pool then ignores its events, and only ferry preview previews it.
	GitHub       forge
	Environments []Environment
}

// Environment is one environment as previews see it.
type Environment struct {
	Name string
	// Path is the environment directory inside the repository.
	Path string
	// Policy is what the environment may write; the head's objects are
	// checked against it. nil checks nothing.
	Policy *apply.Policy
	// Cluster, when set (preview.clusterDiff in ferry.yaml), dry-runs the
	// head of every environment the change touches against the live cluster.
	Cluster differ
}

// Target is what to preview: pull request Number; or, with Number 0, Head
// merged into Base, each a branch, a full ref or a commit (Base "" is the
// tracked branch).
type Target struct {
	Number     int
	Base, Head string
	// Fork says the head comes from another repository: its author may not
	// read the cluster, so no environment is dry-run against it (the diff
	// would show the live state of every object the head names).
	Fork bool
}

func (t Target) String() string {
	if t.Number > 0 {
		return fmt.Sprintf("pull request #%d", t.Number)
	}
	return t.Head
}

// fetchError marks a failure to fetch: worth retrying, unlike the rest.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// Build previews target in repo and returns the report; it posts nothing.
// It fetches the target (never trusting a webhook's SHAs), finds the merge
// base with the tracked branch and the paths changed since, and previews
// each environment (see environment): one whose render inputs at the merge
// base none of those paths touch is Unchanged, not rendered at the head.
//
// An environment that does not render, or whose policy refuses an object,
// is part of the report, not an error. Errors are what kept the report from
// being made (a fetch, the merge base, a checkout), each leading with the
// target (and source's errors with the repository); ctx ending stops the
// work at once.
func Build(ctx context.Context, r renderer, repo Repository, t Target) (*promote.Preview, error) {
	p, err := fetch(ctx, repo, t)
	if err != nil {
		return nil, err
	}
	if p.MergeBase, err = repo.Source.MergeBase(ctx, p.Head, p.Base); err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	changes, err := repo.Source.Changed(ctx, p.MergeBase, p.Head)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	base, err := repo.Source.Checkout(ctx, p.MergeBase)
	if err != nil {
		return nil, fmt.Errorf("%s: merge base: %w", t, err)
	}
	defer base.Release()
	head := &lazyTree{src: repo.Source, sha: p.Head}
	defer head.release()

	b := &builder{r: r, repo: repo, changes: changes, base: base, head: head, revision: p.Head, fork: t.Fork}
	for _, env := range repo.Environments {
		e, err := b.environment(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", t, env.Name, err)
		}
		p.Environments = append(p.Environments, e)
	}
	return p, nil
}

// fetch brings the target into the clone and starts its report.
func fetch(ctx context.Context, repo Repository, t Target) (*promote.Preview, error) {
	p := &promote.Preview{Repository: repo.Name, Number: t.Number}
	if t.Number > 0 {
		pull, err := repo.Source.Fetch(ctx, t.Number)
		if err != nil {
			return nil, &fetchError{err} // source names the repository and the pull request
		}
		p.Head, p.Base = pull.Head, pull.Base
		p.HeadRef, p.BaseRef = fmt.Sprintf("refs/pull/%d/head", t.Number), repo.Branch
		return p, nil
	}
	if t.Head == "" {
		return nil, fmt.Errorf("%s: a preview needs a pull request number or a head ref", repo.Name)
	}
	p.HeadRef, p.BaseRef = t.Head, t.Base
	if p.BaseRef == "" {
		p.BaseRef = repo.Branch
	}
	shas, err := repo.Source.FetchRefs(ctx, p.BaseRef, p.HeadRef)
	if err != nil {
		return nil, &fetchError{err}
	}
	p.Base, p.Head = shas[0], shas[1]
	return p, nil
}

// lazyTree checks the head out on first use: a change that touches no
// environment's inputs never writes the head's files.
type lazyTree struct {
	src  pullSource
	sha  string
	tree *source.Tree
	err  error
}

func (l *lazyTree) dir(ctx context.Context) (string, error) {
	if l.tree == nil && l.err == nil {
		if l.tree, l.err = l.src.Checkout(ctx, l.sha); l.err != nil {
			l.err = fmt.Errorf("head: %w", l.err)
		}
	}
	if l.err != nil {
		return "", l.err
	}
	return l.tree.Dir, nil
}

func (l *lazyTree) release() {
	if l.tree != nil {
		l.tree.Release()
	}
}

// isFetchError reports whether err came from fetching the target.
func isFetchError(err error) bool {
	_, ok := errors.AsType[*fetchError](err)
	return ok
}
