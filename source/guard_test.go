package source

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// rawRepo is a bare repository on a test Git server into which a test writes
// objects with go-git's plumbing: trees no Git client would make.
type rawRepo struct {
	url  string
	repo *git.Repository
}

func newRawRepo(t *testing.T, srv *testenv.GitServer, name string) *rawRepo {
	t.Helper()
	url := srv.CreateRepo(t, name)
	repo, err := git.PlainOpen(srv.RepoDir(name))
	require.NoError(t, err)
	return &rawRepo{url: url, repo: repo}
}

func (r *rawRepo) store(t *testing.T, encode func(plumbing.EncodedObject) error) plumbing.Hash {
	t.Helper()
	obj := r.repo.Storer.NewEncodedObject()
	require.NoError(t, encode(obj))
	h, err := r.repo.Storer.SetEncodedObject(obj)
	require.NoError(t, err)
	return h
}

func (r *rawRepo) blob(t *testing.T, content string) plumbing.Hash {
	return r.store(t, func(o plumbing.EncodedObject) error {
		o.SetType(plumbing.BlobObject)
		w, err := o.Writer()
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(content)); err != nil {
			return err
		}
		return w.Close()
	})
}

// tree stores the entries in the order given, unsorted and unchecked: it
// encodes them itself, since go-git's encoder refuses unsorted entries.
func (r *rawRepo) tree(t *testing.T, entries ...object.TreeEntry) plumbing.Hash {
	return r.store(t, func(o plumbing.EncodedObject) error {
		o.SetType(plumbing.TreeObject)
		w, err := o.Writer()
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := fmt.Fprintf(w, "%o %s\x00%s", uint32(e.Mode), e.Name, e.Hash[:]); err != nil {
				return err
			}
		}
		return w.Close()
	})
}

// commit makes a commit of tree on top of parents and points main at it.
func (r *rawRepo) commit(t *testing.T, tree plumbing.Hash, parents ...string) string {
	t.Helper()
	sig := object.Signature{Name: "Mallory", Email: "mallory@example.com"}
	c := &object.Commit{Author: sig, Committer: sig, Message: "hostile\n", TreeHash: tree}
	for _, p := range parents {
		c.ParentHashes = append(c.ParentHashes, plumbing.NewHash(p))
	}
	h := r.store(t, c.Encode)
	require.NoError(t, r.repo.Storer.SetReference(plumbing.NewHashReference("refs/heads/main", h)))
	return h.String()
}

func fileEntry(name string, h plumbing.Hash) object.TreeEntry {
	return object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
}
func linkEntry(name string, h plumbing.Hash) object.TreeEntry {
	return object.TreeEntry{Name: name, Mode: filemode.Symlink, Hash: h}
}
func dirEntry(name string, h plumbing.Hash) object.TreeEntry {
	return object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
}

// requireNoFiles fails if anything but directories exists under dir.
func requireNoFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		require.NoError(t, err)
		assert.True(t, d.IsDir(), "%s was written", p)
		return nil
	})
	require.NoError(t, err)
}

func TestAHostileTreeIsRefusedAndNothingIsWrittenOutsideTheCheckout(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	raw := newRawRepo(t, srv, "evil")
	outside := t.TempDir()
	dataDir := t.TempDir()
	src, err := New(Options{DataDir: dataDir, Author: object.Signature{Name: "F", Email: "f@example.com"}})
	require.NoError(t, err)
	r, err := src.Open(RepoOptions{Name: "evil", URL: raw.url, Branch: "main", AllowLocal: true})
	require.NoError(t, err)

	x := raw.blob(t, "written through the link\n")
	target := raw.blob(t, outside)
	cases := []struct {
		name    string
		entries []object.TreeEntry
		mention string
	}{
		{"a symlink to a directory outside, then a directory of that name holding x",
			[]object.TreeEntry{linkEntry("a", target), dirEntry("a", raw.tree(t, fileEntry("x", x)))}, "a: the tree has both a symlink and a directory"},
		{"the directory first, then the symlink",
			[]object.TreeEntry{dirEntry("a", raw.tree(t, fileEntry("x", x))), linkEntry("a", target)}, "a: the tree has both a symlink and a directory"},
		{"a symlink to outside, then a deeper directory through it",
			[]object.TreeEntry{dirEntry("d", raw.tree(t, linkEntry("a", target), dirEntry("a", raw.tree(t, dirEntry("b", raw.tree(t, fileEntry("x", x)))))))}, "d/a: the tree has both"},
		{"a directory named ..", []object.TreeEntry{dirEntry("..", raw.tree(t, fileEntry("escaped", x)))}, `".." leaves`},
		{"a name with slashes that climbs out", []object.TreeEntry{fileEntry("x/../../escaped", x)}, "path separator"},
		{"a name with backslashes", []object.TreeEntry{fileEntry(`..\escaped`, x)}, "path separator"},
		{"a .git directory", []object.TreeEntry{dirEntry(".git", raw.tree(t, fileEntry("config", x)))}, "Git's own directory"},
		{"a .GIT directory deeper down", []object.TreeEntry{dirEntry("d", raw.tree(t, dirEntry(".GIT", raw.tree(t, fileEntry("config", x)))))}, `d/.GIT: the name ".GIT" is Git's own`},
		{"the same file twice", []object.TreeEntry{fileEntry("x", x), fileEntry("x", target)}, "x: the path appears twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sha := raw.commit(t, raw.tree(t, tc.entries...))
			head, err := r.Head(t.Context())
			require.NoError(t, err)
			require.Equal(t, sha, head)

			_, err = r.Checkout(t.Context(), head)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "repository evil@"+short(sha)+": checkout: ")
			assert.Contains(t, err.Error(), tc.mention)
			entries, err := os.ReadDir(outside)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing is written through the link")
			requireNoFiles(t, filepath.Join(dataDir, "trees"))
		})
	}
}

func TestALinkInsideTheTreeIsKept(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	raw := newRawRepo(t, srv, "links")
	content := raw.blob(t, "kind: Model\n")
	sha := raw.commit(t, raw.tree(t,
		dirEntry("base", raw.tree(t, fileEntry("model.yaml", content))),
		linkEntry("current", raw.blob(t, "base")),
	))
	r, err := newSource(t).Open(RepoOptions{Name: "links", URL: raw.url, Branch: "main", AllowLocal: true})
	require.NoError(t, err)
	_, err = r.Head(t.Context())
	require.NoError(t, err)
	tree, err := r.Checkout(t.Context(), sha)
	require.NoError(t, err)
	defer tree.Release()
	b, err := os.ReadFile(filepath.Join(tree.Dir, "current", "model.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "kind: Model\n", string(b))
	info, err := os.Lstat(filepath.Join(tree.Dir, "current"))
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, info.Mode().Type())
}

// gitBomb stores a tree of 10 levels, each of 10 entries that all refer to
// the level below: 10^10 files in 11 objects.
func gitBomb(t *testing.T, raw *rawRepo) plumbing.Hash {
	h, mode := raw.blob(t, "boom\n"), filemode.Regular
	for range 10 {
		entries := make([]object.TreeEntry, 10)
		for i := range entries {
			entries[i] = object.TreeEntry{Name: fmt.Sprintf("d%d", i), Mode: mode, Hash: h}
		}
		h, mode = raw.tree(t, entries...), filemode.Dir
	}
	return h
}

func TestAGitBombFailsCheckoutAndChangedAtTheirCaps(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	raw := newRawRepo(t, srv, "bomb")
	before := raw.commit(t, raw.tree(t, fileEntry("README.md", raw.blob(t, "fine\n"))))
	sha := raw.commit(t, gitBomb(t, raw), before)
	ref := "repository bomb@" + short(sha)

	open := func(t *testing.T, opts Options) (*Repository, string) {
		opts.DataDir = t.TempDir()
		opts.Author = object.Signature{Name: "F", Email: "f@example.com"}
		src, err := New(opts)
		require.NoError(t, err)
		r, err := src.Open(RepoOptions{Name: "bomb", URL: raw.url, Branch: "main", AllowLocal: true})
		require.NoError(t, err)
		head, err := r.Head(t.Context())
		require.NoError(t, err)
		require.Equal(t, sha, head)
		return r, opts.DataDir
	}

	t.Run("small caps from Options", func(t *testing.T) {
		r, dataDir := open(t, Options{MaxCheckoutFiles: 500, MaxChangedPaths: 700})
		_, err := r.Checkout(t.Context(), sha)
		require.Error(t, err)
		assert.Contains(t, err.Error(), ref+": checkout: the tree has more than 500 files")
		assert.Contains(t, err.Error(), "raise source.Options.MaxCheckoutFiles")
		requireNoFiles(t, filepath.Join(dataDir, "trees"))

		_, err = r.Changed(t.Context(), "", sha)
		require.Error(t, err)
		assert.Contains(t, err.Error(), ref+": list paths: the tree has more than 700 files")
		assert.Contains(t, err.Error(), "raise source.Options.MaxChangedPaths")

		_, err = r.Changed(t.Context(), before, sha)
		require.Error(t, err)
		assert.Contains(t, err.Error(), ref+": diff against "+short(before)+": the tree has more than 700 files")
	})
	t.Run("the default caps", func(t *testing.T) {
		r, dataDir := open(t, Options{})
		assert.Equal(t, DefaultMaxCheckoutFiles, r.limits.checkout.files.limit)
		assert.Equal(t, int64(DefaultMaxCheckoutBytes), r.limits.checkout.bytes)
		assert.Equal(t, DefaultMaxChangedPaths, r.limits.changed.limit)

		_, err := r.Checkout(t.Context(), sha)
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("checkout: the tree has more than %d files", DefaultMaxCheckoutFiles))
		requireNoFiles(t, filepath.Join(dataDir, "trees"))

		_, err = r.Changed(t.Context(), before, sha)
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("the tree has more than %d files", DefaultMaxChangedPaths))
	})
	t.Run("a cancelled context stops the walks", func(t *testing.T) {
		r, _ := open(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := r.Checkout(ctx, sha)
		assert.ErrorIs(t, err, context.Canceled)
		_, err = r.Changed(ctx, "", sha)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestACheckoutOverTheByteCapWritesNothing(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	raw := newRawRepo(t, srv, "heavy")
	chunk := raw.blob(t, string(make([]byte, 4<<10)))
	// Ten names for one 4 KiB blob: 40 KiB to write from a few bytes of pack.
	var entries []object.TreeEntry
	for i := range 10 {
		entries = append(entries, fileEntry(fmt.Sprintf("w%d.bin", i), chunk))
	}
	sha := raw.commit(t, raw.tree(t, entries...))
	dataDir := t.TempDir()
	src, err := New(Options{DataDir: dataDir, Author: object.Signature{Name: "F", Email: "f@example.com"}, MaxCheckoutBytes: 32 << 10})
	require.NoError(t, err)
	r, err := src.Open(RepoOptions{Name: "heavy", URL: raw.url, Branch: "main", AllowLocal: true})
	require.NoError(t, err)
	_, err = r.Head(t.Context())
	require.NoError(t, err)

	_, err = r.Checkout(t.Context(), sha)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repository heavy@"+short(sha)+": checkout: the tree's files add up to more than 32768 bytes")
	assert.Contains(t, err.Error(), "MaxCheckoutBytes")
	requireNoFiles(t, filepath.Join(dataDir, "trees"))
}

func TestWritesThroughALinkCannotLeaveTheCheckout(t *testing.T) {
	// Behind the check of the whole tree, the writes themselves go through an
	// os.Root: a plan that slipped past the check still cannot leave the
	// directory.
	store := memory.NewStorage()
	put := func(content string) plumbing.Hash {
		obj := store.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		require.NoError(t, err)
		_, err = w.Write([]byte(content))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		h, err := store.SetEncodedObject(obj)
		require.NoError(t, err)
		return h
	}
	outside, checkout := t.TempDir(), t.TempDir()
	plan := []fileToWrite{
		{path: "a", mode: filemode.Symlink, hash: put(outside)},
		{path: "a/x", mode: filemode.Regular, hash: put("escaped\n")},
	}
	err := writeFiles(t.Context(), store, checkout, plan, 1<<20)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a/x: ")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries)
}
