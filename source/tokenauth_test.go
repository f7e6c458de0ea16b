package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// rotating is a token source whose token the test replaces, and a Git server
// that accepts only the current one (the test's own clones use a fixed pair).
type rotating struct {
	mu      sync.Mutex
	current string
	calls   atomic.Int64
	err     error
}

func (r *rotating) rotate(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = fmt.Sprintf("ghs_CANARYrotating%04d", n)
}

func (r *rotating) token(context.Context) (string, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current, r.err
}

func (r *rotating) valid(token string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return token == r.current
}

func seedRotating(t *testing.T) (*rotating, *seeded) {
	t.Helper()
	rot := &rotating{}
	rot.rotate(1)
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{
		Username: "seed", Password: "seed-password",
		Authorize: testenv.InstallationTokenAuth(rot.valid),
	})
	url := srv.CreateRepo(t, "models")
	wt := srv.Clone(t, "models")
	wt.Write(t, "environments/dev/models.yaml", "version: 1.0.0\n")
	head := wt.Commit(t, "first")
	wt.Push(t)
	return rot, &seeded{srv: srv, wt: wt, url: url, head: head}
}

func TestEachRemoteOperationSendsTheTokenCurrentWhenItStarts(t *testing.T) {
	rot, s := seedRotating(t)
	r, err := newSource(t).Open(RepoOptions{Name: "models", URL: s.url, Branch: "main", Auth: Auth{TokenSource: rot.token}, AllowLocal: true})
	require.NoError(t, err)
	head, err := r.Head(t.Context())
	require.NoError(t, err, "the clone authenticates with the first token")

	rot.rotate(2) // the first token is no longer accepted
	s.wt.Write(t, "environments/dev/models.yaml", "version: 1.1.0\n")
	next := s.wt.Commit(t, "second")
	s.wt.Push(t)
	got, err := r.Fetch(t.Context())
	require.NoError(t, err, "the fetch asks for the token again")
	assert.Equal(t, next, got)

	rot.rotate(3)
	_, err = r.FetchBranch(t.Context(), promotionBranch)
	require.NoError(t, err)
	_, err = r.Commit(t.Context(), Change{Branch: promotionBranch, Base: head, Message: "promote",
		Files: map[string][]byte{"environments/staging/models.yaml": []byte("version: 1.0.0\n")}})
	require.NoError(t, err)
	rot.rotate(4)
	require.NoError(t, r.Push(t.Context(), promotionBranch), "the push asks for the token again")
	assert.GreaterOrEqual(t, rot.calls.Load(), int64(4), "one call per remote operation at least")
}

func TestATokenSourceFailureFailsTheOperationAndNoTokenLeaks(t *testing.T) {
	rot, s := seedRotating(t)
	r, err := newSource(t).Open(RepoOptions{Name: "models", URL: s.url, Branch: "main", Auth: Auth{TokenSource: rot.token}, AllowLocal: true})
	require.NoError(t, err)
	_, err = r.Head(t.Context())
	require.NoError(t, err)
	used := rot.current

	t.Run("the source's error is the operation's", func(t *testing.T) {
		mintErr := errors.New("github app 1: installation 2: mint a token: 401 Unauthorized")
		rot.mu.Lock()
		rot.err = mintErr
		rot.mu.Unlock()
		_, err := r.Fetch(t.Context())
		require.Error(t, err)
		assert.ErrorIs(t, err, mintErr)
		assert.Contains(t, err.Error(), "repository models: token:")
	})
	t.Run("a token the server refuses is not in the error", func(t *testing.T) {
		// The source hands out a token the server does not take (revoked,
		// say); it never accepted any with this suffix.
		refuse := &rotating{current: used + "-refused"}
		r, err := newSource(t).Open(RepoOptions{Name: "models", URL: s.url, Branch: "main", Auth: Auth{TokenSource: refuse.token}, AllowLocal: true})
		require.NoError(t, err)
		_, err = r.Fetch(t.Context())
		requireNoCanary(t, err)
		assert.NotContains(t, err.Error(), "CANARY")
	})
}

func TestAuthTakesOneKindOfCredential(t *testing.T) {
	src := newSource(t)
	for _, tc := range []struct {
		name string
		auth Auth
	}{
		{"a token source and a token are refused together", Auth{TokenSource: (&rotating{}).token, Token: token}},
		{"a token source and an SSH key are refused together", Auth{TokenSource: (&rotating{}).token, SSHKey: []byte("key")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := src.Open(RepoOptions{Name: "m", URL: "https://github.com/acme/models.git", Branch: "main", Auth: tc.auth})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "keep one")
			assert.NotContains(t, err.Error(), token)
		})
	}
}

func TestARepositorysOwnAuthorSignsItsCommits(t *testing.T) {
	s := seed(t)
	src := newSource(t)
	bot := object.Signature{Name: "ferry-app[bot]", Email: "123+ferry-app[bot]@users.noreply.github.com"}
	var lookups atomic.Int64
	var lookupErr error
	r, err := src.Open(RepoOptions{Name: "models", URL: s.url, Branch: "main", Auth: Auth{Token: token}, AllowLocal: true,
		Author: func(context.Context) (object.Signature, error) { lookups.Add(1); return bot, lookupErr }})
	require.NoError(t, err)
	head, err := r.Head(t.Context())
	require.NoError(t, err)
	change := Change{Branch: promotionBranch, Base: head, Message: "promote", Files: map[string][]byte{"a": []byte("b")}}

	sha, err := r.Commit(t.Context(), change)
	require.NoError(t, err)
	require.NoError(t, r.Push(t.Context(), promotionBranch))
	author, err := testenv.Git(s.srv.RepoDir("models"), "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha)
	require.NoError(t, err)
	assert.Equal(t, "ferry-app[bot] <123+ferry-app[bot]@users.noreply.github.com>|ferry-app[bot] <123+ferry-app[bot]@users.noreply.github.com>", author)

	lookupErr = errors.New("github app 1: get the app: 502 Bad Gateway")
	_, err = r.Commit(t.Context(), change)
	assert.ErrorIs(t, err, lookupErr, "a failed lookup fails the commit rather than signing it as someone else")
	assert.Equal(t, int64(2), lookups.Load())
}
