package githubtest

import (
	"net/http"
	"testing"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func labelNames(labels []*github.Label) []string {
	out := []string{}
	for _, l := range labels {
		out = append(out, l.GetName())
	}
	return out
}

func TestLabels(t *testing.T) {
	s, c := newTestServer(t, Options{})
	n := s.OpenPR("feature", "main", "t", "")
	ctx := t.Context()

	added, resp, err := c.Issues.AddLabelsToIssue(ctx, "acme", "models", n, []string{"ferry", "env:prod"})
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{"ferry", "env:prod"}, labelNames(added))
	assert.NotZero(t, added[0].GetID())
	assert.Equal(t, "ededed", added[0].GetColor())

	added, _, err = c.Issues.AddLabelsToIssue(ctx, "acme", "models", n, []string{"FERRY", "model:fraud"})
	require.NoError(t, err)
	assert.Equal(t, []string{"ferry", "env:prod", "model:fraud"}, labelNames(added), "a label matches case-insensitively")

	pr, _, err := c.PullRequests.Get(ctx, "acme", "models", n)
	require.NoError(t, err)
	assert.Equal(t, []string{"ferry", "env:prod", "model:fraud"}, labelNames(pr.Labels), "labels show on the pull request")

	replaced, _, err := c.Issues.ReplaceLabelsForIssue(ctx, "acme", "models", n, []string{"ferry"})
	require.NoError(t, err)
	assert.Equal(t, []string{"ferry"}, labelNames(replaced))
	assert.Equal(t, added[0].GetID(), replaced[0].GetID(), "a label keeps its id")

	_, err = c.Issues.RemoveLabelForIssue(ctx, "acme", "models", n, "ferry")
	require.NoError(t, err)
	_, err = c.Issues.RemoveLabelForIssue(ctx, "acme", "models", n, "ferry")
	er := errorResponse(t, err, http.StatusNotFound)
	assert.Equal(t, "Label does not exist", er.Message)

	listed, _, err := c.Issues.ListLabelsByIssue(ctx, "acme", "models", n, nil)
	require.NoError(t, err)
	assert.Empty(t, listed)
	held, _ := s.PullRequest(n)
	assert.Empty(t, held.Labels)
}

func TestLabelBodiesGitHubAccepts(t *testing.T) {
	tests := []struct {
		name, body string
		wantStatus int
	}{
		{"a bare array of names is accepted", `["a","b"]`, http.StatusOK},
		{"an object with labels is accepted", `{"labels":["a","b"]}`, http.StatusOK},
		{"label objects with names are accepted", `{"labels":[{"name":"a"},{"name":"b"}]}`, http.StatusOK},
		{"an empty name is refused", `["a",""]`, http.StatusUnprocessableEntity},
		{"a number is refused", `[5]`, http.StatusUnprocessableEntity},
		{"broken JSON is refused", `["a"`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, Options{})
			n := s.OpenPR("feature", "main", "t", "")
			status, _ := raw(t, s, "POST", "/repos/acme/models/issues/1/labels", "Bearer "+testToken, tt.body)
			assert.Equal(t, tt.wantStatus, status)
			held, _ := s.PullRequest(n)
			if tt.wantStatus == http.StatusOK {
				assert.Equal(t, []string{"a", "b"}, held.Labels)
			} else {
				assert.Empty(t, held.Labels)
			}
		})
	}
}

func TestLabelsOfAMissingIssueAreNotFound(t *testing.T) {
	_, c := newTestServer(t, Options{})
	_, _, err := c.Issues.AddLabelsToIssue(t.Context(), "acme", "models", 4, []string{"a"})
	errorResponse(t, err, http.StatusNotFound)
}
