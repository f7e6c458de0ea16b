package githubtest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const pullsPath = "/repos/{o}/{r}/pulls"

func TestPrimaryRateLimitIsARateLimitError(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Inject(Fault{Method: "POST", Path: pullsPath, RateLimited: true})

	_, resp, err := c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
	var rle *github.RateLimitError
	require.ErrorAs(t, err, &rle)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, 0, rle.Rate.Remaining)
	assert.Equal(t, 5000, rle.Rate.Limit)
	assert.Contains(t, rle.Message, "API rate limit exceeded")
	assert.Equal(t, "core", resp.Header.Get("X-RateLimit-Resource"))
	assert.Empty(t, s.PullRequests(), "a rate-limited request does no work")

	_, resp, err = c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
	require.NoError(t, err, "the fault applied once, and a reset of now does not hold the client back")
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
}

func TestAPrimaryLimitResettingLaterHoldsGoGitHubBack(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Inject(Fault{RateLimited: true, RetryAfter: time.Hour})

	_, _, err := c.PullRequests.List(t.Context(), "acme", "models", nil)
	var rle *github.RateLimitError
	require.ErrorAs(t, err, &rle)
	assert.WithinDuration(t, time.Now().Add(time.Hour), rle.Rate.Reset.Time, 2*time.Second)

	_, _, err = c.PullRequests.List(t.Context(), "acme", "models", nil)
	require.ErrorAs(t, err, &rle)
	assert.Len(t, s.Requests(), 1, "go-github refused the second call itself, without a request")
}

func TestSecondaryRateLimitIsAnAbuseRateLimitError(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Inject(Fault{Method: "POST", Path: "/repos/{o}/{r}/issues/{n}/comments", Secondary: true, RetryAfter: 90 * time.Second})
	n := s.OpenPR("feature", "main", "t", "")

	_, resp, err := c.Issues.CreateComment(t.Context(), "acme", "models", n, &github.IssueComment{Body: github.String("x")})
	var arle *github.AbuseRateLimitError
	require.ErrorAs(t, err, &arle)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.NotNil(t, arle.RetryAfter)
	assert.Equal(t, 90*time.Second, *arle.RetryAfter)
	assert.Contains(t, arle.Message, "secondary rate limit")
	assert.Empty(t, s.Comments(n))
}

func TestTooManyRequestsShowsRetryAfter(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Inject(Fault{Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond})

	_, resp, err := c.PullRequests.List(t.Context(), "acme", "models", nil)
	er := errorResponse(t, err, http.StatusTooManyRequests)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"), "whole seconds, rounded up")
	assert.Equal(t, "2", er.Response.Header.Get("Retry-After"))
}

func TestAfterHandlingDoesTheWorkThenFails(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Inject(Fault{Method: "POST", Path: pullsPath, Status: http.StatusBadGateway, AfterHandling: true})

	_, _, err := c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
	errorResponse(t, err, http.StatusBadGateway)
	require.Len(t, s.PullRequests(), 1, "GitHub created the pull request before answering 502")

	_, _, err = c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
	er := errorResponse(t, err, http.StatusUnprocessableEntity)
	assert.Contains(t, er.Errors[0].Message, "A pull request already exists", "a blind retry meets the one that was made")

	prs, _, err := c.PullRequests.List(t.Context(), "acme", "models", &github.PullRequestListOptions{Head: "acme:feature"})
	require.NoError(t, err)
	assert.Len(t, prs, 1, "looking before creating finds it")
}

func TestHangBlocksUntilTheClientGivesUp(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Inject(Fault{Method: "POST", Path: pullsPath, Hang: true, AfterHandling: true})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err := c.PullRequests.Create(ctx, "acme", "models", newPR("feature", "main"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, s.PullRequests(), 1, "the work was done before the hang")
	assert.Zero(t, s.Requests()[0].Status, "nothing was answered")
}

func TestFaultTimesAndOrder(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Inject(Fault{Path: pullsPath, Status: http.StatusServiceUnavailable, Times: 2})
	s.Inject(Fault{Path: pullsPath, Status: http.StatusBadGateway})

	var got []int
	for range 4 {
		_, resp, _ := c.PullRequests.List(t.Context(), "acme", "models", nil)
		got = append(got, resp.StatusCode)
	}
	assert.Equal(t, []int{503, 503, 502, 200}, got)
}

func TestFaultsMatchMethodAndPath(t *testing.T) {
	s, c := newTestServer(t, Options{})
	n := s.OpenPR("feature", "main", "t", "")
	s.Inject(Fault{Method: "PATCH", Path: "/repos/{o}/{r}/pulls/{n}", Status: http.StatusInternalServerError})

	_, _, err := c.PullRequests.Get(t.Context(), "acme", "models", n)
	require.NoError(t, err, "another method does not match")
	_, _, err = c.PullRequests.List(t.Context(), "acme", "models", nil)
	require.NoError(t, err, "a shorter path does not match")
	_, _, err = c.PullRequests.Edit(t.Context(), "acme", "models", n, &github.PullRequest{Title: github.String("x")})
	errorResponse(t, err, http.StatusInternalServerError)
}

func TestFaultsApplyOnlyToAuthenticatedRequests(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	s.Inject(Fault{Status: http.StatusBadGateway})
	_, _, err := s.Client("wrong").PullRequests.List(t.Context(), "acme", "models", nil)
	errorResponse(t, err, http.StatusUnauthorized)
	_, _, err = s.Client(testToken).PullRequests.List(t.Context(), "acme", "models", nil)
	errorResponse(t, err, http.StatusBadGateway)
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		name, pattern, path string
		want                bool
	}{
		{"an empty pattern matches any path", "", "/repos/acme/models/pulls", true},
		{"a literal path matches itself", "/repos/acme/models/pulls", "/repos/acme/models/pulls", true},
		{"literals are case-sensitive", "/repos/acme/models/PULLS", "/repos/acme/models/pulls", false},
		{"a braced segment matches any one segment", pullsPath, "/repos/acme/models/pulls", true},
		{"a pattern without a trailing slash does not match longer paths", pullsPath, "/repos/acme/models/pulls/1", false},
		{"a pattern does not match shorter paths", "/repos/{o}/{r}/pulls/{n}", "/repos/acme/models/pulls", false},
		{"a braced segment does not match an empty one", "/repos/{o}/{r}/pulls/{n}", "/repos/acme/models/pulls/", false},
		{"a trailing slash matches everything under it", "/repos/{o}/{r}/", "/repos/acme/models/commits/abc/status", true},
		{"a trailing slash does not match the path without it", "/repos/{o}/{r}/", "/repos/acme/models", false},
		{"the root pattern matches every path", "/", "/repos/acme/models/pulls", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, matchPath(tt.pattern, tt.path))
		})
	}
}

func TestInjectRefusesFaultsGitHubCouldNotProduce(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
	}{
		{"a primary and secondary limit at once", Fault{RateLimited: true, Secondary: true}},
		{"a status that is not HTTP", Fault{Status: 42}},
		{"negative times", Fault{Status: 500, Times: -1}},
		{"a path without a leading slash", Fault{Path: "repos/{o}/{r}/pulls", Status: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			s := New(rec, Options{})
			s.Inject(tt.fault)
			require.Len(t, rec.errors(), 1)
			_, _, err := s.Client("").PullRequests.List(t.Context(), "acme", "models", nil)
			assert.False(t, errors.As(err, new(*github.ErrorResponse)), "no fault was added: %v", err)
			assert.NoError(t, err)
		})
	}
}

func TestAHungRequestIsCutOffWhenTheTestEnds(t *testing.T) {
	errc := make(chan error, 1)
	t.Run("inner", func(t *testing.T) {
		reached := make(chan struct{})
		s, c := newTestServer(t, Options{BranchExists: func(string) bool {
			close(reached)
			return true
		}})
		s.Inject(Fault{Hang: true, AfterHandling: true})
		go func() {
			_, _, err := c.PullRequests.Create(context.WithoutCancel(t.Context()), "acme", "models", newPR("feature", "main"))
			errc <- err
		}()
		<-reached // the request is in the handler; the subtest now ends
	})
	err := <-errc
	require.Error(t, err, "an empty 200 would read as success")
	assert.False(t, errors.As(err, new(*github.ErrorResponse)), "the connection was cut, not answered: %v", err)
}
