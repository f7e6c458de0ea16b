package source

import (
	"context"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Changes are the paths that differ between two commits.
type Changes struct {
	// All is true when everything must be treated as changed: there was no
	// previous commit, or it is no longer an ancestor (a force-push).
	All bool
	// Paths are slash paths relative to the repository root, sorted, unique:
	// added, modified and deleted files, and both sides of a rename. With All
	// set they are still the best knowledge: the diff when the old commit is
	// known, every path of the new one when it is not.
	Paths []string
}

// Changed returns the paths changed between from and to (both fetched). An
// empty from means everything changed. Subtrees equal on both sides are not
// read; every entry that is read counts against Options.MaxChangedPaths, and
// passing it is an error naming the repository and the commit, so a tree
// that repeats one subtree many times (a Git bomb) fails fast. ctx is
// checked at every entry.
func (r *Repository) Changed(ctx context.Context, from, to string) (*Changes, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.changed(ctx, from, to)
	return c, redact(err, r.secrets)
}

func (r *Repository) changed(ctx context.Context, from, to string) (*Changes, error) {
	repo, err := r.open()
	if err != nil {
		return nil, err
	}
	toCommit, err := r.commit(repo, to)
	if err != nil {
		return nil, err
	}
	if from == "" {
		return r.allPaths(ctx, repo.Storer, toCommit)
	}
	fromCommit, err := r.commit(repo, from)
	if err != nil {
		// The old commit is gone from the branch and the clone: a force-push.
		return r.allPaths(ctx, repo.Storer, toCommit)
	}
	paths, err := diffTrees(ctx, repo.Storer, fromCommit.TreeHash, toCommit.TreeHash, r.limits.changed)
	if err != nil {
		return nil, fmt.Errorf("repository %s@%s: diff against %s: %w", r.name, short(to), short(from), err)
	}
	ancestor, err := fromCommit.IsAncestor(toCommit)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.name, err)
	}
	return &Changes{All: !ancestor, Paths: paths}, nil
}

// allPaths is the Changes of a commit with nothing to compare it to.
func (r *Repository) allPaths(ctx context.Context, s storer.EncodedObjectStorer, c *object.Commit) (*Changes, error) {
	paths, err := diffTrees(ctx, s, plumbing.ZeroHash, c.TreeHash, r.limits.changed)
	if err != nil {
		return nil, fmt.Errorf("repository %s@%s: list paths: %w", r.name, short(c.Hash.String()), err)
	}
	return &Changes{All: true, Paths: paths}, nil
}
