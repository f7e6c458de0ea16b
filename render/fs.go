package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errReadOnly is returned for every write kustomize attempts: a build never
// needs one, and a remote base would.
var errReadOnly = errors.New("the checkout is read-only during a render")

// EscapeError reports a path that leaves the checkout, directly or through a
// symbolic link. Path is as the build referred to it; nothing of the target is read.
type EscapeError struct {
	Path string
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("%q leaves the repository checkout", e.Path)
}

// boundedFS is the file system kustomize builds on: confined to root (no `..`,
// absolute-path or symlink escape), read-only, with a cap on file size, aware
// of the build's context, and recording every file read (the input set).
type boundedFS struct {
	ctx     context.Context
	root    string // absolute, symlinks resolved
	disk    filesys.FileSystem
	maxFile int64

	mu    sync.Mutex
	read  map[string]string // slash path relative to root -> sha256 of content
	order []string          // paths in the order first read
}

var _ filesys.FileSystem = (*boundedFS)(nil)

func newBoundedFS(ctx context.Context, root string, maxFile int64) (*boundedFS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", root, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", root, err)
	}
	return &boundedFS{ctx: ctx, root: resolved, disk: filesys.MakeFsOnDisk(), maxFile: maxFile, read: map[string]string{}}, nil
}

// confine returns the absolute form of path after checking that it, and what
// any symlink on the way points to, stays inside the root. A path that does
// not exist is confined lexically (so Exists can answer false).
func (b *boundedFS) confine(path string) (string, error) {
	if err := b.ctx.Err(); err != nil {
		return "", fmt.Errorf("render stopped: %w", err)
	}
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(b.root, abs)
	}
	abs = filepath.Clean(abs)
	if !b.within(abs) {
		return "", &EscapeError{Path: path}
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return abs, nil
		}
		return "", fmt.Errorf("%s: %w", b.rel(abs), err)
	}
	if !b.within(resolved) {
		return "", &EscapeError{Path: b.rel(abs)}
	}
	return abs, nil
}

func (b *boundedFS) within(abs string) bool {
	return abs == b.root || strings.HasPrefix(abs, b.root+string(filepath.Separator))
}

// rel returns abs relative to the root, with forward slashes.
func (b *boundedFS) rel(abs string) string {
	r, err := filepath.Rel(b.root, abs)
	if err != nil {
		return abs
	}
	return filepath.ToSlash(r)
}

// record notes that the build read abs, with its content's hash.
func (b *boundedFS) record(abs string, data []byte) {
	rel := b.rel(abs)
	sum := hashBytes(data)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, seen := b.read[rel]; !seen {
		b.order = append(b.order, rel)
	}
	b.read[rel] = sum
}

// inputs returns the files read so far, sorted.
func (b *boundedFS) inputs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.order)
	slices.Sort(out)
	return out
}

// readOrder returns the files read so far, in the order the build read them.
func (b *boundedFS) readOrder() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.order)
}

// hashes returns each file read with the sha256 of its content.
func (b *boundedFS) hashes() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.read)
}

func (b *boundedFS) ReadFile(path string) ([]byte, error) {
	abs, err := b.confine(path)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if info.Size() > b.maxFile {
		return nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit for one file", b.rel(abs), info.Size(), b.maxFile)
	}
	data, err := b.disk.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	if err := checkAliases(b.rel(abs), data); err != nil {
		return nil, err
	}
	b.record(abs, data)
	return data, nil
}

func (b *boundedFS) Open(path string) (filesys.File, error) {
	abs, err := b.confine(path)
	if err != nil {
		return nil, err
	}
	// Read it once to hash it: the input set must cover streamed files too.
	if _, err := b.ReadFile(abs); err != nil {
		return nil, err
	}
	return b.disk.Open(abs)
}

func (b *boundedFS) Exists(path string) bool {
	abs, err := b.confine(path)
	return err == nil && b.disk.Exists(abs)
}

func (b *boundedFS) IsDir(path string) bool {
	abs, err := b.confine(path)
	return err == nil && b.disk.IsDir(abs)
}

func (b *boundedFS) ReadDir(path string) ([]string, error) {
	abs, err := b.confine(path)
	if err != nil {
		return nil, err
	}
	return b.disk.ReadDir(abs)
}

func (b *boundedFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	abs, err := b.confine(path)
	if err != nil {
		return "", "", err
	}
	return b.disk.CleanedAbs(abs)
}

func (b *boundedFS) Glob(pattern string) ([]string, error) {
	if _, err := b.confine(filepath.Dir(pattern)); err != nil {
		return nil, err
	}
	matches, err := b.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	kept := matches[:0]
	for _, m := range matches {
		if _, err := b.confine(m); err == nil {
			kept = append(kept, m)
		}
	}
	return kept, nil
}

func (b *boundedFS) Walk(path string, walkFn filepath.WalkFunc) error {
	abs, err := b.confine(path)
	if err != nil {
		return err
	}
	return b.disk.Walk(abs, func(p string, info fs.FileInfo, err error) error {
		if _, cerr := b.confine(p); cerr != nil {
			return walkFn(p, info, cerr)
		}
		return walkFn(p, info, err)
	})
}

func (b *boundedFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (b *boundedFS) Mkdir(string) error                  { return errReadOnly }
func (b *boundedFS) MkdirAll(string) error               { return errReadOnly }
func (b *boundedFS) RemoveAll(string) error              { return errReadOnly }
func (b *boundedFS) WriteFile(string, []byte) error      { return errReadOnly }
