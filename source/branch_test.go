package source

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

func TestBranchNamesFollowGitsRules(t *testing.T) {
	cases := []struct {
		name   string
		ok     bool
		reason string
	}{
		{"main", true, ""},
		{"release/2024.10", true, ""},
		{"ferry/promote/fraud/staging", true, ""},
		{"feature-x_y.z", true, ""},
		{"v1@2", true, ""},
		{"ümlaut", true, ""},
		{"a+b", true, ""},
		{"", false, "empty"},
		{"main..x", false, `".."`},
		{"main:refs/heads/evil", false, `':'`},
		{"+main", false, `starts with "+"`},
		{"+refs/heads/main:refs/heads/main", false, `':'`},
		{"refs/heads/x:y", false, `':'`},
		{"refs/heads/main", false, `give the branch's name, "main", not its ref`},
		{"refs/tags/v1", false, "not a ref"},
		{"main*", false, `'*'`},
		{"ma?n", false, `'?'`},
		{"ma[n", false, `'['`},
		{"a b", false, `' '`},
		{"a~1", false, `'~'`},
		{"a^", false, `'^'`},
		{`a\b`, false, `'\\'`},
		{"a\tb", false, "control character"},
		{"a\x7fb", false, "control character"},
		{"-main", false, `starts with "-"`},
		{"/main", false, `"/"`},
		{"main/", false, `"/"`},
		{"a//b", false, `"//"`},
		{"main.", false, `ends with "."`},
		{".hidden", false, `starts with "."`},
		{"a/.hidden", false, `starts with "."`},
		{"main.lock", false, `ends with ".lock"`},
		{"a.lock/b", false, `ends with ".lock"`},
		{"@", false, "reserves"},
		{"HEAD", false, "reserves"},
		{"a@{1}", false, `"@{"`},
		{strings.Repeat("x", 256), false, "longer than 255"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateBranch(tc.name)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "is not a valid branch name: ")
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
}

func TestAgreesWithGitCheckRefFormat(t *testing.T) {
	// Beyond git, ferry refuses a leading "+", names under refs/, and "@",
	// which git's --branch reads as the current branch rather than judging.
	dir := t.TempDir()
	for _, name := range []string{"main", "a/b", "main..x", "main:x", "a b", "-x", "x.lock", ".x", "x/", "a//b", "a@{b", "HEAD", "x.", `a\b`, "a*", "a+b", "v1@2", "a/.b/c", "a.lock/b"} {
		_, gitErr := testenv.Git(dir, "check-ref-format", "--branch", name)
		assert.Equal(t, gitErr == nil, ValidateBranch(name) == nil, name)
	}
}

func TestEveryMethodThatTakesABranchRefusesABadOne(t *testing.T) {
	s := seed(t)
	_, err := newSource(t).Open(RepoOptions{Name: "models", URL: s.url, Branch: "main:refs/heads/evil", Auth: Auth{Token: token}, AllowLocal: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `repository models: "main:refs/heads/evil" is not a valid branch name`)

	r := s.open(t, newSource(t))
	head, err := r.Head(t.Context())
	require.NoError(t, err)
	before := s.srv.Requests()
	for _, bad := range []string{"main:refs/heads/evil", "+main", "refs/heads/x:y", "x..y", "-f"} {
		_, err = r.FetchBranch(t.Context(), bad)
		assert.ErrorContains(t, err, "is not a valid branch name", bad)
		err = r.Push(t.Context(), bad)
		assert.ErrorContains(t, err, "is not a valid branch name", bad)
		_, err = r.Commit(t.Context(), Change{Branch: bad, Base: head, Message: "m", Files: map[string][]byte{"x": []byte("y")}})
		assert.ErrorContains(t, err, "is not a valid branch name", bad)
	}
	assert.Equal(t, before, s.srv.Requests(), "a bad name is refused before any request")
	refs, err := testenv.Git(s.srv.RepoDir("models"), "for-each-ref", "--format=%(refname)")
	require.NoError(t, err)
	assert.Equal(t, "refs/heads/main", refs)
}
