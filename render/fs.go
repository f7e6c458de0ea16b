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
// absolute-path or symlink escape), read-only, with a cap on the size of one
// file and on the bytes one build reads, aware of the build's context, and
// recording every file read (the input set).
//
// Once the context ends or the byte limit is passed, every later access fails
// with the same error (see halt): that is how a build nobody waits for any
// more ends, at its next file access.
type boundedFS struct {
	ctx      context.Context
	root     string // absolute, symlinks resolved
	disk     filesys.FileSystem
	maxFile  int64
	maxBuild int64

	mu      sync.Mutex
	nodes   map[string]node   // absolute path -> what confine resolved it to
	read    map[string]string // slash path relative to root -> sha256 of content
	order   []string          // paths in the order first read
	charged int64             // bytes ReadFile has returned
	stop    error             // why every access now fails; nil while the build may go on

	// beforeRead, when set (by tests), is called at the start of every ReadFile.
	beforeRead func(path string)
}

var _ filesys.FileSystem = (*boundedFS)(nil)

// newBoundedFS returns the file system of one render of the checkout at root.
// maxFile caps one file, maxBuild the total ReadFile returns.
func newBoundedFS(ctx context.Context, root string, maxFile, maxBuild int64) (*boundedFS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", root, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", root, err)
	}
	return &boundedFS{
		ctx: ctx, root: resolved, disk: filesys.MakeFsOnDisk(), maxFile: maxFile, maxBuild: maxBuild,
		read: map[string]string{}, nodes: map[string]node{},
	}, nil
}

// halt makes err the answer to every later access, unless an earlier error
// already is, and returns the one that stands.
func (b *boundedFS) halt(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop == nil {
		b.stop = err
	}
	return b.stop
}

// stopped returns why the file system refuses every access (the context
// ended, or the build read too much), or nil. Exists and IsDir answer false
// rather than fail, so the build's own error may not say it; this does.
func (b *boundedFS) stopped() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stop
}

// node is what confine learned about one path. A build's checkout does not
// change under it, so each path is resolved once per build.
type node struct {
	abs      string // cleaned absolute path, as asked
	resolved string // symlinks resolved; equal to abs when it does not exist
	exists   bool
	isDir    bool
}

// confine returns what path is after checking that it, and what any symlink on
// the way points to, stays inside the root. A path that does not exist is
// confined lexically (so Exists can answer false).
func (b *boundedFS) confine(path string) (node, error) {
	if err := b.stopped(); err != nil {
		return node{}, err
	}
	if err := b.ctx.Err(); err != nil {
		return node{}, b.halt(fmt.Errorf("render stopped: %w", err))
	}
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(b.root, abs)
	}
	abs = filepath.Clean(abs)
	if !b.within(abs) {
		return node{}, &EscapeError{Path: path}
	}

	b.mu.Lock()
	n, ok := b.nodes[abs]
	b.mu.Unlock()
	if !ok {
		n = node{abs: abs, resolved: abs}
		resolved, err := filepath.EvalSymlinks(abs)
		switch {
		case err == nil:
			n.resolved, n.exists = resolved, true
			if info, err := os.Stat(resolved); err == nil {
				n.isDir = info.IsDir()
			}
		case !errors.Is(err, fs.ErrNotExist):
			return node{}, fmt.Errorf("%s: %w", b.rel(abs), err)
		}
		b.mu.Lock()
		b.nodes[abs] = n
		b.mu.Unlock()
	}
	if !b.within(n.resolved) {
		return node{}, &EscapeError{Path: b.rel(abs)}
	}
	return n, nil
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

// ReadFile is kustomize's read: bounded (readBounded), counted against the
// build's byte limit, refused when its YAML aliases would explode, and
// recorded in the input set.
func (b *boundedFS) ReadFile(path string) ([]byte, error) {
	if b.beforeRead != nil {
		b.beforeRead(path)
	}
	abs, data, err := b.readBounded(path)
	if err != nil {
		return nil, err
	}
	if err := b.charge(abs, len(data)); err != nil {
		return nil, err
	}
	if err := checkAliases(b.rel(abs), data); err != nil {
		return nil, err
	}
	b.record(abs, data)
	return data, nil
}

// charge counts n bytes read from abs against the build's limit. Every read
// counts, the same file read twice included: the limit bounds the work.
func (b *boundedFS) charge(abs string, n int) error {
	b.mu.Lock()
	b.charged += int64(n)
	total := b.charged
	b.mu.Unlock()
	if total > b.maxBuild {
		return b.halt(fmt.Errorf("%s: reading it brings the build to %d bytes, over the %d-byte limit for one build (MaxBuildBytes); split the environment or raise the limit",
			b.rel(abs), total, b.maxBuild))
	}
	return nil
}

// readBounded returns a file confined to the root and under the size limit, without
// recording it: the cache's check of old inputs is not part of a build.
func (b *boundedFS) readBounded(path string) (string, []byte, error) {
	n, err := b.confine(path)
	if err != nil {
		return "", nil, err
	}
	info, err := os.Stat(n.abs)
	if err != nil {
		return "", nil, err
	}
	if info.Size() > b.maxFile {
		return "", nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit for one file", b.rel(n.abs), info.Size(), b.maxFile)
	}
	data, err := b.disk.ReadFile(n.abs)
	return n.abs, data, err
}

func (b *boundedFS) Open(path string) (filesys.File, error) {
	n, err := b.confine(path)
	if err != nil {
		return nil, err
	}
	// Read it once to hash it: the input set must cover streamed files too.
	if _, err := b.ReadFile(n.abs); err != nil {
		return nil, err
	}
	return b.disk.Open(n.abs)
}

func (b *boundedFS) Exists(path string) bool {
	n, err := b.confine(path)
	return err == nil && n.exists
}

func (b *boundedFS) IsDir(path string) bool {
	n, err := b.confine(path)
	return err == nil && n.isDir
}

func (b *boundedFS) ReadDir(path string) ([]string, error) {
	n, err := b.confine(path)
	if err != nil {
		return nil, err
	}
	return b.disk.ReadDir(n.abs)
}

// CleanedAbs splits path into its symlink-free directory and file name, as
// kustomize's on-disk file system does, from the memoised resolution.
//
// The root itself is answered without a check, even once the file system has
// stopped: kustomize's loader constructor (pkg/loader.NewFileLoaderAtCwd)
// ends the process with log.Fatalf when it cannot confirm its root. The
// build's next real access fails instead.
func (b *boundedFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if path == filesys.SelfDir || filepath.Clean(path) == b.root {
		return filesys.ConfirmedDir(b.root), "", nil
	}
	n, err := b.confine(path)
	if err != nil {
		return "", "", err
	}
	if !n.exists {
		return "", "", fmt.Errorf("%s: %w", b.rel(n.abs), fs.ErrNotExist)
	}
	if n.isDir {
		return filesys.ConfirmedDir(n.resolved), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(n.resolved)), filepath.Base(n.resolved), nil
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
	n, err := b.confine(path)
	if err != nil {
		return err
	}
	return b.disk.Walk(n.abs, func(p string, info fs.FileInfo, err error) error {
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
