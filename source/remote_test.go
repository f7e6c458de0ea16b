package source

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// twoRemotes is a Git server with two unrelated repositories, a and b, each
// with a different file on main.
func twoRemotes(t *testing.T) (srv *testenv.GitServer, heads map[string]string) {
	t.Helper()
	srv = testenv.NewGitServer(t, testenv.GitServerOptions{})
	heads = map[string]string{}
	for _, name := range []string{"a", "b"} {
		srv.CreateRepo(t, name)
		wt := srv.Clone(t, name)
		wt.Write(t, name+".yaml", "from: "+name+"\n")
		heads[name] = wt.Commit(t, "first of "+name)
		wt.Push(t)
	}
	return srv, heads
}

func TestTheCachedCloneFollowsANewURL(t *testing.T) {
	srv, heads := twoRemotes(t)
	dataDir := t.TempDir()
	open := func(url, branch string) *Repository {
		src, err := New(Options{DataDir: dataDir, Author: object.Signature{Name: "F", Email: "f@example.com"}})
		require.NoError(t, err)
		r, err := src.Open(RepoOptions{Name: "models", URL: url, Branch: branch, AllowLocal: true})
		require.NoError(t, err)
		return r
	}
	a := open(srv.URL+"/a.git", "main")
	head, err := a.Head(t.Context())
	require.NoError(t, err)
	require.Equal(t, heads["a"], head)

	// ferry restarts with ferry.yaml pointing the same name at b.
	b := open(srv.URL+"/b.git", "main")
	head, err = b.Head(t.Context())
	require.NoError(t, err)
	assert.Equal(t, heads["b"], head)
	tree, err := b.Checkout(t.Context(), head)
	require.NoError(t, err)
	defer tree.Release()
	assert.FileExists(t, filepath.Join(tree.Dir, "b.yaml"))
	assert.NoFileExists(t, filepath.Join(tree.Dir, "a.yaml"))

	clone := filepath.Join(dataDir, "repos", "models.git")
	_, err = testenv.Git(clone, "cat-file", "-e", heads["a"])
	assert.Error(t, err, "nothing of the old remote is kept: the clone was made again")
	changes, err := b.Changed(t.Context(), heads["a"], head)
	require.NoError(t, err)
	assert.True(t, changes.All, "a commit of the old remote is unknown, as after a force-push")
}

func TestTheCachedCloneFollowsANewBranch(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	url := srv.CreateRepo(t, "models")
	wt := srv.Clone(t, "models")
	wt.Write(t, "main.yaml", "on: main\n")
	mainHead := wt.Commit(t, "main")
	wt.Push(t)
	_, err := testenv.Git(wt.Dir, "checkout", "-q", "-b", "release")
	require.NoError(t, err)
	wt.Write(t, "release.yaml", "on: release\n")
	releaseHead := wt.Commit(t, "release")
	_, err = testenv.Git(wt.Dir, "push", "-q", "origin", "release")
	require.NoError(t, err)

	dataDir := t.TempDir()
	open := func(branch string) *Repository {
		src, err := New(Options{DataDir: dataDir, Author: object.Signature{Name: "F", Email: "f@example.com"}})
		require.NoError(t, err)
		r, err := src.Open(RepoOptions{Name: "models", URL: url, Branch: branch, AllowLocal: true})
		require.NoError(t, err)
		return r
	}
	head, err := open("main").Head(t.Context())
	require.NoError(t, err)
	require.Equal(t, mainHead, head)

	r := open("release")
	head, err = r.Head(t.Context())
	require.NoError(t, err)
	assert.Equal(t, releaseHead, head)
	clone := filepath.Join(dataDir, "repos", "models.git")
	spec, err := testenv.Git(clone, "config", "--get-all", "remote.origin.fetch")
	require.NoError(t, err)
	assert.Equal(t, "+refs/heads/release:refs/remotes/origin/release", spec)
	_, err = os.Stat(filepath.Join(clone, readyMarker))
	assert.NoError(t, err)
}

func TestOpeningANameAgainWithAnotherURLIsAnError(t *testing.T) {
	src := newSource(t)
	_, err := src.Open(RepoOptions{Name: "models", URL: "https://example.com/a.git", Branch: "main"})
	require.NoError(t, err)
	_, err = src.Open(RepoOptions{Name: "models", URL: "https://example.com/b.git", Branch: "main"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repository models: already open with another URL or branch")
}
