package source

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
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
// refuses any that point outside the tree).
func (r *Repository) export(ctx context.Context, sha string) (string, error) {
	repo, err := r.open()
	if err != nil {
		return "", err
	}
	c, err := r.commit(repo, sha)
	if err != nil {
		return "", err
	}
	tree, err := c.Tree()
	if err != nil {
		return "", fmt.Errorf("repository %s@%s: %w", r.name, short(sha), err)
	}
	if err := os.MkdirAll(r.treesDir, 0o700); err != nil {
		return "", fmt.Errorf("repository %s: %w", r.name, err)
	}
	tmp, err := os.MkdirTemp(r.treesDir, sha+".tmp-")
	if err != nil {
		return "", fmt.Errorf("repository %s: %w", r.name, err)
	}
	err = tree.Files().ForEach(func(f *object.File) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return writeFile(tmp, f)
	})
	if err != nil {
		removeReadOnly(tmp)
		return "", fmt.Errorf("repository %s@%s: checkout: %w", r.name, short(sha), err)
	}
	dir := filepath.Join(r.treesDir, sha)
	removeReadOnly(dir) // left over from a process that stopped mid-way
	if err := os.Rename(tmp, dir); err != nil {
		removeReadOnly(tmp)
		return "", fmt.Errorf("repository %s: %w", r.name, err)
	}
	makeReadOnly(dir)
	return dir, nil
}

func writeFile(root string, f *object.File) error {
	if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
		return fmt.Errorf("%s: path leaves the tree", f.Name)
	}
	path := filepath.Join(root, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rd, err := f.Reader()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rd.Close()
	if f.Mode == filemode.Symlink {
		target, err := io.ReadAll(io.LimitReader(rd, 4096))
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		return os.Symlink(string(target), path)
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rd); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return out.Close()
}

// makeReadOnly takes write permission off every file and directory under dir.
func makeReadOnly(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || d.Type()&fs.ModeSymlink != 0:
		case d.IsDir():
			dirs = append(dirs, p)
		default:
			os.Chmod(p, 0o444)
		}
		return nil
	})
	for _, d := range dirs {
		os.Chmod(d, 0o555)
	}
}

func removeReadOnly(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(dir)
}
