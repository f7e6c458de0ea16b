package source

import (
	"context"
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5/plumbing/object"
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
// empty from means everything changed.
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
	toTree, err := toCommit.Tree()
	if err != nil {
		return nil, fmt.Errorf("repository %s@%s: %w", r.name, short(to), err)
	}
	if from == "" {
		paths, err := allPaths(toTree)
		return &Changes{All: true, Paths: paths}, err
	}

	fromCommit, err := r.commit(repo, from)
	if err != nil {
		// The old commit is gone from the branch and the clone: a force-push.
		paths, err := allPaths(toTree)
		return &Changes{All: true, Paths: paths}, err
	}
	fromTree, err := fromCommit.Tree()
	if err != nil {
		return nil, fmt.Errorf("repository %s@%s: %w", r.name, short(from), err)
	}
	diff, err := object.DiffTreeWithOptions(ctx, fromTree, toTree, &object.DiffTreeOptions{})
	if err != nil {
		return nil, fmt.Errorf("repository %s: diff %s..%s: %w", r.name, short(from), short(to), err)
	}
	var paths []string
	for _, ch := range diff {
		for _, name := range []string{ch.From.Name, ch.To.Name} {
			if name != "" {
				paths = append(paths, name)
			}
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)

	ancestor, err := fromCommit.IsAncestor(toCommit)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.name, err)
	}
	return &Changes{All: !ancestor, Paths: paths}, nil
}

func allPaths(t *object.Tree) ([]string, error) {
	var paths []string
	err := t.Files().ForEach(func(f *object.File) error {
		paths = append(paths, f.Name)
		return nil
	})
	slices.Sort(paths)
	return paths, err
}
