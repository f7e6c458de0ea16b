package githubtest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommentLifecycle(t *testing.T) {
	s, c := newTestServer(t, Options{})
	n := s.OpenPR("feature", "main", "t", "")
	ctx := t.Context()

	created, resp, err := c.Issues.CreateComment(ctx, "acme", "models", n, &github.IssueComment{Body: github.String("preview v1")})
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "preview v1", created.GetBody())
	assert.Equal(t, DefaultLogin, created.GetUser().GetLogin())
	assert.Contains(t, created.GetHTMLURL(), fmt.Sprintf("/pull/%d#issuecomment-%d", n, created.GetID()))

	edited, resp, err := c.Issues.EditComment(ctx, "acme", "models", created.GetID(), &github.IssueComment{Body: github.String("preview v2")})
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, created.GetID(), edited.GetID())

	got, _, err := c.Issues.GetComment(ctx, "acme", "models", created.GetID())
	require.NoError(t, err)
	assert.Equal(t, "preview v2", got.GetBody())

	held := s.Comments(n)
	require.Len(t, held, 1)
	assert.Equal(t, "preview v2", held[0].Body)

	resp, err = c.Issues.DeleteComment(ctx, "acme", "models", created.GetID())
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, s.Comments(n))

	_, err = c.Issues.DeleteComment(ctx, "acme", "models", created.GetID())
	errorResponse(t, err, http.StatusNotFound)
}

func TestListCommentsOldestFirstAcrossPages(t *testing.T) {
	s, c := newTestServer(t, Options{})
	n := s.OpenPR("feature", "main", "t", "")
	other := s.OpenPR("other", "main", "t", "")
	for i := range 45 {
		s.AddComment(n, fmt.Sprintf("comment %d", i))
	}
	s.AddComment(other, "elsewhere")

	var bodies []string
	opts := &github.IssueListCommentsOptions{}
	for {
		comments, resp, err := c.Issues.ListComments(t.Context(), "acme", "models", n, opts)
		require.NoError(t, err)
		for _, cm := range comments {
			bodies = append(bodies, cm.GetBody())
			assert.Equal(t, personLogin, cm.GetUser().GetLogin())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	require.Len(t, bodies, 45, "two pages of 30 and 15")
	assert.Equal(t, "comment 0", bodies[0])
	assert.Equal(t, "comment 44", bodies[44])
}

func TestCommentBodies(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantStatus  int
		wantMessage string
	}{
		{"65,536 characters are accepted", strings.Repeat("x", 65536), http.StatusCreated, ""},
		{"65,536 multi-byte characters are accepted: the limit counts characters", strings.Repeat("é", 65536), http.StatusCreated, ""},
		{"65,537 characters are too long", strings.Repeat("x", 65537), http.StatusUnprocessableEntity,
			"Body is too long (maximum is 65536 characters)"},
		{"an empty body is refused", "", http.StatusUnprocessableEntity, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newTestServer(t, Options{})
			n := s.OpenPR("feature", "main", "t", "")
			_, resp, err := c.Issues.CreateComment(t.Context(), "acme", "models", n, &github.IssueComment{Body: github.String(tt.body)})
			if tt.wantStatus == http.StatusCreated {
				require.NoError(t, err)
				assert.Len(t, s.Comments(n), 1)
				return
			}
			er := errorResponse(t, err, tt.wantStatus)
			assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
			assert.Equal(t, "Validation Failed", er.Message)
			if tt.wantMessage != "" {
				require.Len(t, er.Errors, 1)
				assert.Equal(t, tt.wantMessage, er.Errors[0].Message)
			}
			assert.Empty(t, s.Comments(n))
		})
	}
}

func TestEditingACommentToTooLongIsRefused(t *testing.T) {
	s, c := newTestServer(t, Options{})
	n := s.OpenPR("feature", "main", "t", "")
	id := s.AddComment(n, "short")
	_, _, err := c.Issues.EditComment(t.Context(), "acme", "models", id, &github.IssueComment{Body: github.String(strings.Repeat("x", 65537))})
	errorResponse(t, err, http.StatusUnprocessableEntity)
	assert.Equal(t, "short", s.Comments(n)[0].Body)
}

func TestCommentingOnAMissingIssueIsNotFound(t *testing.T) {
	_, c := newTestServer(t, Options{})
	_, _, err := c.Issues.CreateComment(t.Context(), "acme", "models", 3, &github.IssueComment{Body: github.String("x")})
	errorResponse(t, err, http.StatusNotFound)
}
