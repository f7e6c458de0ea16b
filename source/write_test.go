package source

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

const promotionBranch = "ferry/promote/fraud/staging"

func TestACommitOnAPromotionBranchIsPushedAndReadableByGit(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	head, err := r.Head(t.Context())
	require.NoError(t, err)
	seen, err := r.FetchBranch(t.Context(), promotionBranch)
	require.NoError(t, err)
	require.Empty(t, seen, "the branch does not exist yet")

	sha, err := r.Commit(t.Context(), Change{
		Branch: promotionBranch, Base: head,
		Files:   map[string][]byte{"environments/staging/models.yaml": []byte("version: 1.0.0\n")},
		Message: "Promote fraud 1.0.0 to staging",
	})
	require.NoError(t, err)
	require.NoError(t, r.Push(t.Context(), promotionBranch))

	bare := s.srv.RepoDir("models")
	got, err := testenv.Git(bare, "rev-parse", "refs/heads/"+promotionBranch)
	require.NoError(t, err)
	assert.Equal(t, sha, got)
	content, err := testenv.Git(bare, "show", sha+":environments/staging/models.yaml")
	require.NoError(t, err)
	assert.Equal(t, "version: 1.0.0", content)
	kept, err := testenv.Git(bare, "show", sha+":models/fraud/model.yaml")
	require.NoError(t, err)
	assert.Equal(t, "kind: Model", kept, "files not in the change are kept")
	_, err = testenv.Git(bare, "fsck", "--strict")
	assert.NoError(t, err, "the trees ferry writes are well-formed for git")
	author, err := testenv.Git(bare, "log", "-1", "--format=%an <%ae> %s", sha)
	require.NoError(t, err)
	assert.Equal(t, "Ferry <ferry@example.com> Promote fraud 1.0.0 to staging", author)
}

func TestPushIsForceWithLease(t *testing.T) {
	s := seed(t)
	change := func(version string) Change {
		return Change{Branch: promotionBranch, Base: s.head, Message: "promote " + version,
			Files: map[string][]byte{"environments/staging/models.yaml": []byte("version: " + version + "\n")}}
	}
	// Two ferry replicas, each with its own clone.
	a, b := s.open(t, newSource(t)), s.open(t, newSource(t))
	for _, r := range []*Repository{a, b} {
		_, err := r.Head(t.Context())
		require.NoError(t, err)
		_, err = r.FetchBranch(t.Context(), promotionBranch)
		require.NoError(t, err)
	}

	t.Run("creating a branch that appeared meanwhile is a lost race", func(t *testing.T) {
		_, err := a.Commit(t.Context(), change("1.1.0"))
		require.NoError(t, err)
		require.NoError(t, a.Push(t.Context(), promotionBranch))

		_, err = b.Commit(t.Context(), change("1.2.0"))
		require.NoError(t, err)
		err = b.Push(t.Context(), promotionBranch)
		require.ErrorIs(t, err, ErrStale)
	})
	t.Run("replacing a branch someone else moved is a lost race", func(t *testing.T) {
		// b catches up, then a moves the branch again.
		_, err := b.FetchBranch(t.Context(), promotionBranch)
		require.NoError(t, err)
		_, err = a.Commit(t.Context(), change("1.3.0"))
		require.NoError(t, err)
		require.NoError(t, a.Push(t.Context(), promotionBranch))

		_, err = b.Commit(t.Context(), change("1.4.0"))
		require.NoError(t, err)
		require.ErrorIs(t, b.Push(t.Context(), promotionBranch), ErrStale)
	})
	t.Run("after fetching again the retry replaces it", func(t *testing.T) {
		_, err := b.FetchBranch(t.Context(), promotionBranch)
		require.NoError(t, err)
		sha, err := b.Commit(t.Context(), change("1.4.0"))
		require.NoError(t, err)
		require.NoError(t, b.Push(t.Context(), promotionBranch))
		got, err := testenv.Git(s.srv.RepoDir("models"), "rev-parse", "refs/heads/"+promotionBranch)
		require.NoError(t, err)
		assert.Equal(t, sha, got)
	})
}

func TestCommitRefusesPathsThatLeaveTheRepository(t *testing.T) {
	s := seed(t)
	r := s.open(t, newSource(t))
	head, err := r.Head(t.Context())
	require.NoError(t, err)
	for _, p := range []string{"../x", "/etc/passwd", "a/../../b", ".git/config", "a//b"} {
		_, err := r.Commit(t.Context(), Change{Branch: "b", Base: head, Message: "m", Files: map[string][]byte{p: []byte("x")}})
		assert.Error(t, err, p)
	}
}
