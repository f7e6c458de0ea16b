package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

const token = "ghs_CANARYtoken0123456789abcdef"

func newSource(t testing.TB) *Source {
	t.Helper()
	s, err := New(Options{DataDir: t.TempDir(), Author: object.Signature{Name: "Ferry", Email: "ferry@example.com"}})
	require.NoError(t, err)
	return s
}

// seeded is a git server with one repository holding a first commit.
type seeded struct {
	srv  *testenv.GitServer
	wt   *testenv.WorkTree
	url  string
	head string
}

func seed(t testing.TB) *seeded {
	t.Helper()
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{Username: "x-access-token", Password: token})
	url := srv.CreateRepo(t, "models")
	wt := srv.Clone(t, "models")
	wt.Write(t, "environments/dev/models.yaml", "version: 1.0.0\n")
	wt.Write(t, "models/fraud/model.yaml", "kind: Model\n")
	wt.Write(t, "README.md", "models\n")
	head := wt.Commit(t, "first")
	wt.Push(t)
	return &seeded{srv: srv, wt: wt, url: url, head: head}
}

func (s *seeded) open(t testing.TB, src *Source) *Repository {
	t.Helper()
	r, err := src.Open(RepoOptions{Name: "models", URL: s.url, Branch: "main", Auth: Auth{Token: token}, AllowLocal: true})
	require.NoError(t, err)
	return r
}

func TestFirstHeadClonesAndCheckoutExportsTheFiles(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	head, err := r.Head(t.Context())
	require.NoError(t, err)
	assert.Equal(t, s.head, head)

	tree, err := r.Checkout(t.Context(), head)
	require.NoError(t, err)
	defer tree.Release()
	b, err := os.ReadFile(filepath.Join(tree.Dir, "environments", "dev", "models.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "version: 1.0.0\n", string(b))
	info, err := os.Stat(filepath.Join(tree.Dir, "README.md"))
	require.NoError(t, err)
	assert.Zero(t, info.Mode().Perm()&0o222, "a checkout is read-only")
}

func TestANewCommitIsFetchedIncrementally(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	_, err := r.Head(t.Context())
	require.NoError(t, err)

	s.wt.Write(t, "environments/dev/models.yaml", "version: 1.1.0\n")
	next := s.wt.Commit(t, "bump")
	s.wt.Push(t)

	head, err := r.Head(t.Context())
	require.NoError(t, err)
	assert.Equal(t, next, head)
	assert.Equal(t, int64(2), r.fetches)
}

func TestNothingChangedCostsOneRequestAndNoFetch(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	_, err := r.Head(t.Context())
	require.NoError(t, err)
	before, fetches := s.srv.Requests(), r.fetches

	head, err := r.Head(t.Context())
	require.NoError(t, err)
	assert.Equal(t, s.head, head)
	assert.Equal(t, int64(1), s.srv.Requests()-before, "one ref advertisement, nothing else")
	assert.Equal(t, fetches, r.fetches)
}

func TestChangedListsAddedModifiedDeletedAndRenamedPaths(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	from, err := r.Head(t.Context())
	require.NoError(t, err)

	s.wt.Write(t, "environments/staging/models.yaml", "version: 1.0.0\n") // added
	s.wt.Write(t, "environments/dev/models.yaml", "version: 2.0.0\n")     // modified
	_, err = testenv.Git(s.wt.Dir, "rm", "-q", "README.md")               // deleted
	require.NoError(t, err)
	_, err = testenv.Git(s.wt.Dir, "mv", "models/fraud/model.yaml", "models/fraud/fraud.yaml") // renamed
	require.NoError(t, err)
	to := s.wt.Commit(t, "many changes")
	s.wt.Push(t)
	_, err = r.Head(t.Context())
	require.NoError(t, err)

	changes, err := r.Changed(t.Context(), from, to)
	require.NoError(t, err)
	assert.False(t, changes.All)
	assert.Equal(t, []string{
		"README.md",
		"environments/dev/models.yaml",
		"environments/staging/models.yaml",
		"models/fraud/fraud.yaml",
		"models/fraud/model.yaml",
	}, changes.Paths)

	none, err := r.Changed(t.Context(), to, to)
	require.NoError(t, err)
	assert.Empty(t, none.Paths)

	all, err := r.Changed(t.Context(), "", to)
	require.NoError(t, err)
	assert.True(t, all.All)
	assert.Len(t, all.Paths, 3)
}

func TestAForcePushMeansEverythingChanged(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	s.wt.Write(t, "environments/dev/models.yaml", "version: 1.1.0\n")
	old := s.wt.Commit(t, "to be rewritten")
	s.wt.Push(t)
	_, err := r.Head(t.Context())
	require.NoError(t, err)

	_, err = testenv.Git(s.wt.Dir, "reset", "-q", "--hard", s.head)
	require.NoError(t, err)
	s.wt.Write(t, "environments/dev/models.yaml", "version: 9.9.9\n")
	rewritten := s.wt.Commit(t, "rewritten")
	_, err = testenv.Git(s.wt.Dir, "push", "-q", "--force", "origin", "HEAD:main")
	require.NoError(t, err)

	head, err := r.Head(t.Context())
	require.NoError(t, err)
	require.Equal(t, rewritten, head)
	changes, err := r.Changed(t.Context(), old, head)
	require.NoError(t, err)
	assert.True(t, changes.All)

	// An old commit the clone never had (another replica's state) is a force-push too.
	changes, err = r.Changed(t.Context(), "0123456789012345678901234567890123456789", head)
	require.NoError(t, err)
	assert.True(t, changes.All)
}

func TestConcurrentHeadsOfOneRepositoryAgree(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	heads := make([]string, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range heads {
		wg.Go(func() { heads[i], errs[i] = r.Head(t.Context()) })
	}
	wg.Wait()
	for i := range heads {
		require.NoError(t, errs[i])
		assert.Equal(t, s.head, heads[i])
	}
}

func TestTwoEnvironmentsHoldTwoCommitsAtOnce(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	first, err := r.Head(t.Context())
	require.NoError(t, err)
	s.wt.Write(t, "environments/dev/models.yaml", "version: 1.1.0\n")
	s.wt.Commit(t, "bump")
	s.wt.Push(t)
	second, err := r.Head(t.Context())
	require.NoError(t, err)

	var a, b *Tree
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { a, errA = r.Checkout(t.Context(), first) })
	wg.Go(func() { b, errB = r.Checkout(t.Context(), second) })
	wg.Wait()
	require.NoError(t, errA)
	require.NoError(t, errB)
	read := func(tr *Tree) string {
		b, err := os.ReadFile(filepath.Join(tr.Dir, "environments", "dev", "models.yaml"))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "version: 1.0.0\n", read(a))
	assert.Equal(t, "version: 1.1.0\n", read(b))

	again, err := r.Checkout(t.Context(), first)
	require.NoError(t, err)
	a.Release()
	assert.Equal(t, "version: 1.0.0\n", read(again), "a shared tree stays until its last user releases it")
	again.Release()
	assert.NoDirExists(t, again.Dir)
	b.Release()
	assert.NoDirExists(t, b.Dir)
}

func TestAnInterruptedCloneIsMadeAgain(t *testing.T) {
	s := seed(t)
	dataDir := t.TempDir()
	src := func() *Source {
		src, err := New(Options{DataDir: dataDir, Author: object.Signature{Name: "Ferry", Email: "ferry@example.com"}})
		require.NoError(t, err)
		return src
	}
	r := s.open(t, src())
	_, err := r.Head(t.Context())
	require.NoError(t, err)
	clone := filepath.Join(dataDir, "repos", "models.git")

	t.Run("killed mid-fetch: no ready marker, a truncated pack", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(clone, readyMarker)))
		packs, _ := filepath.Glob(filepath.Join(clone, "objects", "pack", "*.pack"))
		for _, p := range packs {
			require.NoError(t, os.Truncate(p, 10))
		}
		head, err := s.open(t, src()).Head(t.Context())
		require.NoError(t, err)
		assert.Equal(t, s.head, head)
	})
	t.Run("garbage where the clone was", func(t *testing.T) {
		require.NoError(t, os.RemoveAll(clone))
		require.NoError(t, os.MkdirAll(clone, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(clone, "HEAD"), []byte("junk"), 0o600))
		head, err := s.open(t, src()).Head(t.Context())
		require.NoError(t, err)
		assert.Equal(t, s.head, head)
	})
}

func TestAFetchOverTheSizeLimitIsAborted(t *testing.T) {
	s := seed(t)
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i*7919) ^ byte(i>>8) // incompressible enough
	}
	s.wt.Write(t, "models/weights.bin", string(big))
	s.wt.Commit(t, "weights")
	s.wt.Push(t)

	src, err := New(Options{DataDir: t.TempDir(), Author: object.Signature{Name: "F", Email: "f@example.com"}, MaxFetchBytes: 64 << 10})
	require.NoError(t, err)
	_, err = s.open(t, src).Head(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repository models")
	assert.Contains(t, err.Error(), "larger than")
}

func TestACancelledContextBoundsNetworkCalls(t *testing.T) {
	s := seed(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.open(t, newSource(t)).Head(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), err.Error())
}

func TestLocalPathsWorkOnlyWithAllowLocal(t *testing.T) {
	s := seed(t)
	dir := s.srv.RepoDir("models")
	_, err := newSource(t).Open(RepoOptions{Name: "local", URL: dir, Branch: "main"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "allowLocal")

	r, err := newSource(t).Open(RepoOptions{Name: "local", URL: dir, Branch: "main", AllowLocal: true})
	require.NoError(t, err)
	head, err := r.Head(t.Context())
	require.NoError(t, err)
	assert.Equal(t, s.head, head)
}

func TestFetchBringsANewCommitWithoutAskingFirst(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	_, err := r.Head(t.Context())
	require.NoError(t, err)
	s.wt.Write(t, "environments/dev/models.yaml", "version: 3.0.0\n")
	next := s.wt.Commit(t, "bump")
	s.wt.Push(t)

	before := s.srv.Requests()
	head, err := r.Fetch(t.Context())
	require.NoError(t, err)
	assert.Equal(t, next, head)
	assert.Equal(t, int64(2), s.srv.Requests()-before, "the ref advertisement and the pack, no separate ls-remote")
	_, err = r.Checkout(t.Context(), head)
	require.NoError(t, err)
}

func TestTagsAreFetchedOnlyWhenAsked(t *testing.T) {
	s := seed(t)
	_, err := testenv.Git(s.wt.Dir, "tag", "v1.0.0")
	require.NoError(t, err)
	_, err = testenv.Git(s.wt.Dir, "push", "-q", "origin", "v1.0.0")
	require.NoError(t, err)
	s.wt.Write(t, "README.md", "changed\n")
	s.wt.Commit(t, "after the tag")
	s.wt.Push(t)

	for _, tags := range []bool{false, true} {
		dataDir := t.TempDir()
		src, err := New(Options{DataDir: dataDir, Author: object.Signature{Name: "F", Email: "f@example.com"}})
		require.NoError(t, err)
		r, err := src.Open(RepoOptions{Name: "models", URL: s.url, Branch: "main", Auth: Auth{Token: token}, AllowLocal: true, Tags: tags})
		require.NoError(t, err)
		_, err = r.Head(t.Context())
		require.NoError(t, err)
		refs, err := testenv.Git(filepath.Join(dataDir, "repos", "models.git"), "for-each-ref", "refs/tags")
		require.NoError(t, err)
		if tags {
			assert.Contains(t, refs, "refs/tags/v1.0.0")
		} else {
			assert.Empty(t, refs)
		}
	}
}
