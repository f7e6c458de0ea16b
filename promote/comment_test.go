package promote

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/githubtest"
)

func TestAPreviewCommentIsCreatedOnceAndEditedOnEachPush(t *testing.T) {
	gh, srv := newGitHub(t)
	n := srv.OpenPR("feature", "main", "bump dev", "")
	srv.AddComment(n, "LGTM, but quoting ferry:\n"+PreviewMarker)

	first, err := gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+"\nfirst push")
	require.NoError(t, err)
	assert.Equal(t, CommentCreated, first.Action, "a comment that only quotes the marker is not ferry's")

	second, err := gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+"\nsecond push")
	require.NoError(t, err)
	assert.Equal(t, CommentResult{ID: first.ID, URL: first.URL, Action: CommentUpdated}, second)

	again, err := gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+"\nsecond push")
	require.NoError(t, err)
	assert.Equal(t, CommentUnchanged, again.Action, "an equal body costs no edit")

	comments := srv.Comments(n)
	require.Len(t, comments, 2)
	assert.Equal(t, PreviewMarker+"\nsecond push", comments[1].Body)
	edits := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPatch {
			edits++
		}
	}
	assert.Equal(t, 1, edits)
}

func TestThePreviewCommentIsFoundPastTheFirstPage(t *testing.T) {
	gh, srv := newGitHub(t)
	n := srv.OpenPR("feature", "main", "busy", "")
	for i := range 150 {
		srv.AddComment(n, fmt.Sprintf("comment %d", i))
	}
	_, err := gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+"\none")
	require.NoError(t, err)
	for i := range 60 {
		srv.AddComment(n, fmt.Sprintf("later %d", i))
	}
	res, err := gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+"\ntwo")
	require.NoError(t, err)
	assert.Equal(t, CommentUpdated, res.Action)
	assert.Len(t, srv.Comments(n), 211, "one preview comment among the people's")
}

func TestAPreviewCommentGitHubCreatedButAnsweredFiveHundredTwoIsEditedNotRepeated(t *testing.T) {
	gh, srv := newGitHub(t)
	n := srv.OpenPR("feature", "main", "bump", "")
	srv.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/issues/{n}/comments", Status: http.StatusBadGateway, AfterHandling: true})
	_, err := gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+"\nfirst")
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("acme/models: pull request #%d: comment", n))

	res, err := gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+"\nretry")
	require.NoError(t, err)
	assert.Equal(t, CommentUpdated, res.Action)
	assert.Len(t, srv.Comments(n), 1)
}

func TestUpsertCommentRefusesABodyWithoutItsMarkerOrOverTheLimit(t *testing.T) {
	gh, srv := newGitHub(t)
	n := srv.OpenPR("feature", "main", "bump", "")
	_, err := gh.UpsertComment(t.Context(), n, PreviewMarker, "no marker")
	assert.Error(t, err)
	_, err = gh.UpsertComment(t.Context(), n, "ferry:preview", "ferry:preview body")
	assert.Error(t, err, "a marker must be hidden")
	_, err = gh.UpsertComment(t.Context(), n, PreviewMarker, PreviewMarker+strings.Repeat("x", MaxCommentBytes))
	assert.Error(t, err)
	assert.Empty(t, srv.Requests(), "refused before any request")
}
