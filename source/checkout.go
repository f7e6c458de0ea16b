package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Tree is a read-only export of one commit's files on disk, for render. Trees
// of the same commit are shared; the directory is removed when the last user
// releases it.
type Tree struct {
	// Dir holds the commit's files.
	Dir string
	// SHA is the commit.
	SHA string

	repo     *Repository
	released bool
}

type treeRef struct {
	dir  string
	refs int
}

// Checkout exports the commit sha (which must have been fetched, e.g. by Head)
// into its own directory and returns it. Two callers may hold trees of two
// different commits at once; neither disturbs the other. Call Release when done.
//
// A tree is checked whole before anything is written, and refused with an
// error naming the repository, the commit and the path when it holds a name
// such as "..", ".git" or one with a separator, a path twice (a symlink and a
// directory of one name would write through the link), or more than
// Options.MaxCheckoutFiles entries or MaxCheckoutBytes bytes. Files are then
// written through an os.Root, so no write lands outside the tree's directory.
func (r *Repository) Checkout(ctx context.Context, sha string) (*Tree, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.trees[sha]; ok {
		t.refs++
		return &Tree{Dir: t.dir, SHA: sha, repo: r}, nil
	}
	dir, err := r.export(ctx, sha)
	if err != nil {
		return nil, redact(err, r.secrets)
	}
	r.trees[sha] = &treeRef{dir: dir, refs: 1}
	return &Tree{Dir: dir, SHA: sha, repo: r}, nil
}

// Release gives the tree back; the last release removes the directory.
func (t *Tree) Release() {
	r := t.repo
	if r == nil {
		return // a Tree made by a caller, not by Checkout
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.released {
		return
	}
	t.released = true
	ref, ok := r.trees[t.SHA]
	if !ok {
		return
	}
	if ref.refs--; ref.refs == 0 {
		delete(r.trees, t.SHA)
		removeReadOnly(ref.dir)
	}
}

// export writes the commit's files into a fresh directory, then makes them
// read-only. Submodules are skipped; symlinks are kept as symlinks (render
// refuses any that point outside the tree). The whole tree is checked before
// anything is written (see planCheckout), and then written through an
// os.Root: a hostile tree is refused without leaving a file anywhere.
func (r *Repository) export(ctx context.Context, sha string) (string, error) {
	repo, err := r.open()
	if err != nil {
		return "", err
	}
	c, err := r.commit(repo, sha)
	if err != nil {
		return "", err
	}
	ref := r.name + "@" + short(sha)
	files, err := planCheckout(ctx, repo.Storer, c.TreeHash, r.limits.checkout)
	if err != nil {
		return "", fmt.Errorf("repository %s: checkout: %w", ref, err)
	}
	if err := os.MkdirAll(r.treesDir, 0o700); err != nil {
		return "", fmt.Errorf("repository %s: %w", r.name, err)
	}
	tmp, err := os.MkdirTemp(r.treesDir, sha+".tmp-")
	if err != nil {
		return "", fmt.Errorf("repository %s: %w", r.name, err)
	}
	if err := writeFiles(ctx, repo.Storer, tmp, files, r.limits.checkout.bytes); err != nil {
		removeReadOnly(tmp)
		return "", fmt.Errorf("repository %s: checkout: %w", ref, err)
	}
	dir := filepath.Join(r.treesDir, sha)
	removeReadOnly(dir) // left over from a process that stopped mid-way
	if err := os.Rename(tmp, dir); err != nil {
		removeReadOnly(tmp)
		return "", fmt.Errorf("repository %s: %w", r.name, err)
	}
	if err := makeReadOnly(dir); err != nil {
		removeReadOnly(dir)
		return "", fmt.Errorf("repository %s: checkout: make read-only: %w", ref, err)
	}
	return dir, nil
}
