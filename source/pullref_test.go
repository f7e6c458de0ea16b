package source

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

const (
	writeToken = "ghs_CANARYwrite0123456789"
	readToken  = "ghs_CANARYread0123456789"
)

// pullFixture is a repository with main (first → second) and pull request 7,
// a commit on first that only refs/pull/7/head names, as GitHub keeps a
// fork's head in the base repository.
type pullFixture struct {
	srv                  *testenv.GitServer
	creds                *testenv.CredentialLog
	repo                 *Repository
	first, second, head7 string
}

func newPullFixture(t *testing.T) *pullFixture {
	t.Helper()
	creds := testenv.NewCredentialLog(writeToken, readToken)
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{Username: "seed", Password: "seed-password", Authorize: creds.Authorize})
	url := srv.CreateRepo(t, "models")
	wt := srv.Clone(t, "models")
	wt.Write(t, "environments/dev/models.yaml", "version: 1.0.0\n")
	first := wt.Commit(t, "first")
	wt.Push(t)
	wt.Write(t, "environments/dev/models.yaml", "version: 1.0.1\n")
	second := wt.Commit(t, "second")
	wt.Push(t)

	_, err := testenv.Git(wt.Dir, "checkout", "-q", "-b", "fork", first)
	require.NoError(t, err)
	wt.Write(t, "environments/dev/models.yaml", "version: 2.0.0\n")
	head7 := wt.Commit(t, "the fork's change")
	_, err = testenv.Git(wt.Dir, "push", "-q", "origin", "HEAD:refs/pull/7/head")
	require.NoError(t, err)

	r, err := newSource(t).Open(RepoOptions{Name: "models", URL: url, Branch: "main", Auth: Auth{Token: writeToken}, AllowLocal: true})
	require.NoError(t, err)
	return &pullFixture{srv: srv, creds: creds, repo: r, first: first, second: second, head7: head7}
}

func TestAPullRequestIsFetchedWithTheReadCredentialsOnly(t *testing.T) {
	f := newPullFixture(t)
	_, err := f.repo.Head(t.Context()) // the engine's own fetch, with the repository's token
	require.NoError(t, err)
	pulls, err := f.repo.PullRequests(Auth{Token: readToken})
	require.NoError(t, err)
	refsBefore, err := testenv.Git(f.srv.RepoDir("models"), "show-ref")
	require.NoError(t, err)

	n := f.creds.Len()
	pull, err := pulls.Fetch(t.Context(), 7)
	require.NoError(t, err)
	assert.Equal(t, Pull{Number: 7, Head: f.head7, Base: f.second}, pull)
	used := f.creds.Since(n)
	require.NotEmpty(t, used, "the fetch authenticated")
	for _, token := range used {
		assert.Equal(t, readToken, token, "a pull request is fetched with the read token, never the write token")
	}
	refsAfter, err := testenv.Git(f.srv.RepoDir("models"), "show-ref")
	require.NoError(t, err)
	assert.Equal(t, refsBefore, refsAfter, "fetching changed nothing on the remote")

	base, err := pulls.MergeBase(t.Context(), pull.Head, pull.Base)
	require.NoError(t, err)
	assert.Equal(t, f.first, base, "the pull request branched off the first commit")
	changes, err := pulls.Changed(t.Context(), base, pull.Head)
	require.NoError(t, err)
	assert.Equal(t, []string{"environments/dev/models.yaml"}, changes.Paths)
	tree, err := pulls.Checkout(t.Context(), pull.Head)
	require.NoError(t, err)
	tree.Release()
}

func TestTheReadDoorWorksBeforeTheEngineEverFetched(t *testing.T) {
	f := newPullFixture(t)
	pulls, err := f.repo.PullRequests(Auth{Token: readToken})
	require.NoError(t, err)
	pull, err := pulls.Fetch(t.Context(), 7)
	require.NoError(t, err)
	assert.Equal(t, f.head7, pull.Head)

	head, err := f.repo.Head(t.Context())
	require.NoError(t, err)
	assert.Equal(t, f.second, head, "the engine's view of main is its own, untouched by the pull request fetch")
}

func TestAPullRequestTheRemoteDoesNotHaveIsErrRefNotFound(t *testing.T) {
	f := newPullFixture(t)
	pulls, err := f.repo.PullRequests(Auth{Token: readToken})
	require.NoError(t, err)
	_, err = pulls.Fetch(t.Context(), 8)
	require.ErrorIs(t, err, ErrRefNotFound)
	assert.Contains(t, err.Error(), "pull request #8")
	assert.NotContains(t, err.Error(), readToken)
}

func TestWrongReadCredentialsFailWithoutFallingBackToTheWriteToken(t *testing.T) {
	f := newPullFixture(t)
	pulls, err := f.repo.PullRequests(Auth{Token: "ghs_CANARYwrong"})
	require.NoError(t, err)
	n := f.creds.Len()
	_, err = pulls.Fetch(t.Context(), 7)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "ghs_CANARYwrong")
	assert.NotContains(t, f.creds.Since(n), writeToken)
}

func TestFetchRefsTakesBranchesRefsAndCommitsAndRefusesTheRest(t *testing.T) {
	f := newPullFixture(t)
	pulls, err := f.repo.PullRequests(Auth{Token: readToken})
	require.NoError(t, err)
	shas, err := pulls.FetchRefs(t.Context(), f.first, "refs/pull/7/head", "main")
	require.NoError(t, err)
	assert.Equal(t, []string{f.first, f.head7, f.second}, shas)

	for _, bad := range []string{"main:refs/heads/evil", "+main", "refs/remotes/origin/main", "refs/heads/../x"} {
		n := f.srv.Requests()
		_, err := pulls.FetchRefs(t.Context(), bad)
		assert.Error(t, err, bad)
		assert.Equal(t, n, f.srv.Requests(), "%s is refused before any request", bad)
	}
	_, err = pulls.FetchRefs(t.Context(), "no-such-branch")
	assert.ErrorIs(t, err, ErrRefNotFound)
	_, err = pulls.FetchRefs(t.Context(), "0123456789012345678901234567890123456789")
	assert.Error(t, err, "a commit the clone does not hold")
}

func TestThePullRequestDoorRefusesATokenSource(t *testing.T) {
	f := newPullFixture(t)
	_, err := f.repo.PullRequests(Auth{TokenSource: (&rotating{}).token})
	assert.ErrorContains(t, err, "token source")
}
