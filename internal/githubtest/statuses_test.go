package githubtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sha = "3f786850e387550fdab836ed7e6dc881de23001b"

func TestCreateStatus(t *testing.T) {
	s, c := newTestServer(t, Options{})
	st, resp, err := c.Repositories.CreateStatus(t.Context(), "acme", "models", sha, &github.RepoStatus{
		State: github.String("success"), Context: github.String("ferry/prod"),
		Description: github.String("healthy, 3 tests passed"), TargetURL: github.String("https://ferry.example/prod"),
	})
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "success", st.GetState())
	assert.Equal(t, "ferry/prod", st.GetContext())
	assert.Equal(t, DefaultLogin, st.GetCreator().GetLogin())
	assert.NotZero(t, st.GetID())

	held := s.Statuses(sha)
	require.Len(t, held, 1)
	assert.Equal(t, Status{ID: st.GetID(), Context: "ferry/prod", State: "success", Description: "healthy, 3 tests passed",
		TargetURL: "https://ferry.example/prod", Creator: DefaultLogin, CreatedAt: held[0].CreatedAt}, held[0])
}

func TestCreateStatusRefusesWhatGitHubRefuses(t *testing.T) {
	tests := []struct {
		name        string
		status      github.RepoStatus
		wantMessage string
	}{
		{"a state outside error, failure, pending and success is refused",
			github.RepoStatus{State: github.String("passed")}, "state is not included in the list"},
		{"a description over 140 characters is refused",
			github.RepoStatus{State: github.String("success"), Description: github.String(strings.Repeat("d", 141))},
			"description is too long (maximum is 140 characters)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newTestServer(t, Options{})
			_, _, err := c.Repositories.CreateStatus(t.Context(), "acme", "models", sha, &tt.status)
			er := errorResponse(t, err, http.StatusUnprocessableEntity)
			require.Len(t, er.Errors, 1)
			assert.Equal(t, tt.wantMessage, er.Errors[0].Message)
			assert.Empty(t, s.Statuses(sha))
		})
	}
}

func TestADescriptionOf140CharactersIsAccepted(t *testing.T) {
	_, c := newTestServer(t, Options{})
	st, _, err := c.Repositories.CreateStatus(t.Context(), "acme", "models", sha, &github.RepoStatus{
		State: github.String("pending"), Description: github.String(strings.Repeat("d", 140)),
	})
	require.NoError(t, err)
	assert.Equal(t, "default", st.GetContext(), "an unnamed context is default")
}

func TestCombinedStatus(t *testing.T) {
	type post struct{ context, state string }
	tests := []struct {
		name      string
		posts     []post
		wantState string
		wantTotal int
	}{
		{"a commit without statuses is pending", nil, "pending", 0},
		{"all contexts succeeding is success", []post{{"ci", "success"}, {"ferry/dev", "success"}}, "success", 2},
		{"one pending context is pending", []post{{"ci", "success"}, {"ferry/dev", "pending"}}, "pending", 2},
		{"one failing context is failure", []post{{"ci", "success"}, {"ferry/dev", "failure"}}, "failure", 2},
		{"an error is a failure", []post{{"ci", "error"}}, "failure", 1},
		{"a failure outranks a pending", []post{{"ci", "pending"}, {"ferry/dev", "failure"}}, "failure", 2},
		{"only the latest status of a context counts", []post{{"ci", "failure"}, {"ci", "pending"}, {"ci", "success"}}, "success", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newTestServer(t, Options{})
			for _, p := range tt.posts {
				s.SetStatus(sha, p.context, p.state, "")
			}
			combined, _, err := c.Repositories.GetCombinedStatus(t.Context(), "acme", "models", sha, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantState, combined.GetState())
			assert.Equal(t, tt.wantTotal, combined.GetTotalCount())
			assert.Len(t, combined.Statuses, tt.wantTotal)
			assert.Equal(t, sha, combined.GetSHA())
		})
	}
}

func TestCombinedStatusShowsTheLatestOfEachContext(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.SetStatus(sha, "ci", "pending", "running")
	s.SetStatus(sha, "ferry/dev", "success", "healthy")
	s.SetStatus(sha, "ci", "success", "passed")
	combined, _, err := c.Repositories.GetCombinedStatus(t.Context(), "acme", "models", sha, nil)
	require.NoError(t, err)
	require.Len(t, combined.Statuses, 2)
	assert.Equal(t, "ci", combined.Statuses[0].GetContext())
	assert.Equal(t, "passed", combined.Statuses[0].GetDescription())
}

func TestListStatusesNewestFirst(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.SetStatus(sha, "ci", "pending", "first")
	s.SetStatus(sha, "ci", "success", "second")
	s.SetStatus("other", "ci", "failure", "elsewhere")
	statuses, _, err := c.Repositories.ListStatuses(t.Context(), "acme", "models", sha, nil)
	require.NoError(t, err)
	require.Len(t, statuses, 2)
	assert.Equal(t, "second", statuses[0].GetDescription())
	assert.Equal(t, "first", statuses[1].GetDescription())
}

func TestARefWithSlashesIsOneRef(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.SetStatus("release/v1", "ci", "success", "")
	combined, _, err := c.Repositories.GetCombinedStatus(t.Context(), "acme", "models", "release/v1", nil)
	require.NoError(t, err)
	assert.Equal(t, "success", combined.GetState())
}

func TestSetStatusRefusesAnUnknownState(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := New(rec, Options{})
	s.SetStatus(sha, "ci", "green", "")
	assert.Len(t, rec.errors(), 1)
	assert.Empty(t, s.Statuses(sha))
}
