package source

import (
	"context"
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// maxPathLen bounds the length of a path in a tree: Linux's PATH_MAX. Without
// it a chain of nested trees costs memory quadratic in its depth.
const maxPathLen = 4096

// Neither walk below uses go-git's TreeWalker (tree.Files) or DiffTree: the
// walker expands a subtree every time a tree refers to it and ends silently,
// as if the tree were complete, when a subtree is missing; DiffTree expands
// an added subtree in full, without looking at ctx. A tree that refers to one
// subtree ten times, ten levels deep, is a Git bomb of 10^10 files in a few
// hundred bytes. Both walks here count every entry they meet and stop at a cap.

// entryCap is a walk's cap on the entries it meets, and the Options field
// that sets it, for the error.
type entryCap struct {
	limit  int
	option string
}

// tooManyError is a walk stopped at its cap.
type tooManyError struct{ entryCap }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("the tree has more than %d files (directories counted): raise source.Options.%s, "+
		"or clean up the repository if a tree repeats one subtree many times (a Git bomb)", e.limit, e.option)
}

// treeEntry is an entry met by walkTree, with its slash path from the root.
type treeEntry struct {
	path string
	object.TreeEntry
}

// walkTree calls fn for every entry under the tree root, depth first, each
// directory before what it holds; a subtree referred to twice is visited
// twice. It returns a *tooManyError once it has met more than lim.limit
// entries (directories included), ctx's error once ctx is done, the error of
// a subtree that cannot be read, or the first error of fn.
func walkTree(ctx context.Context, s storer.EncodedObjectStorer, root plumbing.Hash, lim entryCap, fn func(treeEntry) error) error {
	type frame struct {
		dir     string
		entries []object.TreeEntry
	}
	trees := treeCache{s: s}
	top, err := trees.get(root)
	if err != nil {
		return fmt.Errorf("read tree: %w", err)
	}
	stack := []frame{{entries: top}}
	n := 0
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.entries) == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		e := top.entries[0]
		top.entries = top.entries[1:]
		p, err := step(ctx, &n, lim, top.dir, e.Name)
		if err != nil {
			return err
		}
		if err := fn(treeEntry{path: p, TreeEntry: e}); err != nil {
			return err
		}
		if e.Mode == filemode.Dir {
			sub, err := trees.get(e.Hash)
			if err != nil {
				return fmt.Errorf("%s: read tree: %w", p, err)
			}
			stack = append(stack, frame{dir: p, entries: sub})
		}
	}
	return nil
}

// treeCache reads each tree of a walk once: go-git's storage opens the pack
// file again for every object it reads.
type treeCache struct {
	s     storer.EncodedObjectStorer
	trees map[plumbing.Hash][]object.TreeEntry
}

func (c *treeCache) get(h plumbing.Hash) ([]object.TreeEntry, error) {
	if e, ok := c.trees[h]; ok {
		return e, nil
	}
	t, err := object.GetTree(c.s, h)
	if err != nil {
		return nil, err
	}
	if c.trees == nil {
		c.trees = map[plumbing.Hash][]object.TreeEntry{}
	}
	c.trees[h] = t.Entries
	return t.Entries, nil
}

// step counts one more entry of a walk and returns its path, or the reason
// the walk must stop: ctx is done, the cap is passed, the path is too long.
func step(ctx context.Context, n *int, lim entryCap, dir, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if *n++; *n > lim.limit {
		return "", &tooManyError{lim}
	}
	p := name
	if dir != "" {
		p = dir + "/" + name
	}
	if len(p) > maxPathLen {
		return "", fmt.Errorf("%.80s…: the path is longer than %d bytes", p, maxPathLen)
	}
	return p, nil
}

// diffTrees returns the sorted, unique paths of the files (links and
// submodules included) that differ between the trees from and to: added,
// removed, or changed in content or mode. A zero hash is the empty tree, so
// diffTrees(zero, t) lists every file of t. Subtrees with equal hashes are
// skipped without being read. Like walkTree it counts every entry it meets
// and stops past lim or when ctx is done.
func diffTrees(ctx context.Context, s storer.EncodedObjectStorer, from, to plumbing.Hash, lim entryCap) ([]string, error) {
	d := &differ{ctx: ctx, cache: treeCache{s: s}, lim: lim}
	if err := d.trees("", from, to); err != nil {
		return nil, err
	}
	slices.Sort(d.paths)
	return slices.Compact(d.paths), nil
}

type differ struct {
	ctx   context.Context
	cache treeCache
	lim   entryCap
	n     int
	paths []string
}

func (d *differ) trees(dir string, from, to plumbing.Hash) error {
	if from == to {
		return nil
	}
	a, err := d.entries(dir, from)
	if err != nil {
		return err
	}
	b, err := d.entries(dir, to)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		x, inA := a[k]
		y, inB := b[k]
		if inA && inB && x.Hash == y.Hash && x.Mode == y.Mode {
			continue
		}
		e := y
		if !inB {
			e = x
		}
		p, err := step(d.ctx, &d.n, d.lim, dir, e.Name)
		if err != nil {
			return err
		}
		if e.Mode != filemode.Dir {
			d.paths = append(d.paths, p)
			continue
		}
		var fromSub, toSub plumbing.Hash
		if inA {
			fromSub = x.Hash
		}
		if inB {
			toSub = y.Hash
		}
		if err := d.trees(p, fromSub, toSub); err != nil {
			return err
		}
	}
	return nil
}

// entries reads the tree h (none for the zero hash), keyed as Git sorts
// them: a directory's name with a trailing "/", so that a file and a
// directory of the same name stay apart.
func (d *differ) entries(dir string, h plumbing.Hash) (map[string]object.TreeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	entries, err := d.cache.get(h)
	if err != nil {
		if dir == "" {
			return nil, fmt.Errorf("read tree: %w", err)
		}
		return nil, fmt.Errorf("%s: read tree: %w", dir, err)
	}
	m := make(map[string]object.TreeEntry, len(entries))
	for _, e := range entries {
		k := e.Name
		if e.Mode == filemode.Dir {
			k += "/"
		}
		m[k] = e
	}
	return m, nil
}
