package githubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testToken = "ghs_0123456789abcdef"

// newTestServer starts a server that wants testToken, and a client that sends it.
func newTestServer(t *testing.T, opts Options) (*Server, *github.Client) {
	t.Helper()
	opts.Tokens = append(opts.Tokens, testToken)
	s := New(t, opts)
	return s, s.Client(testToken)
}

// errorResponse asserts err is GitHub's error answer with status, and returns it.
func errorResponse(t *testing.T, err error, status int) *github.ErrorResponse {
	t.Helper()
	var er *github.ErrorResponse
	require.ErrorAs(t, err, &er)
	require.Equal(t, status, er.Response.StatusCode, "message: %s", er.Message)
	return er
}

// raw sends a request the way no go-github method would, and returns the
// status and the decoded JSON body (nil when empty).
func raw(t *testing.T, s *Server, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, strings.TrimSuffix(s.URL, "/")+path, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(data) > 0 {
		_ = json.Unmarshal(data, &out) // arrays stay nil; callers that need them use go-github
	}
	return resp.StatusCode, out
}

// recordingTB captures Errorf, for tests of the helpers that fail a test.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func TestAuthentication(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	tests := []struct {
		name        string
		auth        string
		wantStatus  int
		wantMessage string
	}{
		{"a bearer token that is listed is accepted", "Bearer " + testToken, http.StatusOK, ""},
		{"the token scheme is accepted too", "token " + testToken, http.StatusOK, ""},
		{"basic auth with the token as password is accepted", "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+testToken)), http.StatusOK, ""},
		{"a wrong token gets 401 bad credentials", "Bearer ghs_wrong", http.StatusUnauthorized, "Bad credentials"},
		{"an unknown scheme gets 401 bad credentials", "Digest " + testToken, http.StatusUnauthorized, "Bad credentials"},
		{"no credentials get 401 requires authentication", "", http.StatusUnauthorized, "Requires authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := raw(t, s, "GET", "/repos/acme/models/pulls/1", tt.auth, "")
			if tt.wantStatus == http.StatusOK {
				assert.Equal(t, http.StatusNotFound, status, "authenticated, the missing pull request is what answers")
				return
			}
			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, tt.wantMessage, body["message"])
			assert.Equal(t, docsREST, body["documentation_url"])
		})
	}
}

func TestWrongTokenThroughGoGitHub(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	_, _, err := s.Client("ghs_wrong").PullRequests.List(t.Context(), "acme", "models", nil)
	er := errorResponse(t, err, http.StatusUnauthorized)
	assert.Equal(t, "Bad credentials", er.Message)
}

func TestEnterprisePrefixServesTheSameRepository(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c, err := github.NewClient(nil).WithAuthToken(testToken).WithEnterpriseURLs(s.URL, s.URL)
	require.NoError(t, err)
	require.Equal(t, "/api/v3/", c.BaseURL.Path)

	pr, resp, err := c.PullRequests.Create(t.Context(), "acme", "models", &github.NewPullRequest{
		Title: github.String("promote"), Head: github.String("ferry/promote/a/prod"), Base: github.String("main"),
	})
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Contains(t, pr.GetURL(), "/api/v3/repos/acme/models/pulls/1")

	for i := range 3 {
		s.OpenPR(fmt.Sprintf("b%d", i), "main", "t", "")
	}
	_, resp, err = c.PullRequests.List(t.Context(), "acme", "models", &github.PullRequestListOptions{
		ListOptions: github.ListOptions{PerPage: 2},
	})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.NextPage)
	assert.Contains(t, resp.Header.Get("Link"), "/api/v3/repos/acme/models/pulls?")

	reqs := s.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "/repos/acme/models/pulls", reqs[0].Path, "the log drops the prefix")
}

func TestEveryResponseCarriesGitHubsHeaders(t *testing.T) {
	s, c := newTestServer(t, Options{})
	_, resp, err := c.PullRequests.Get(t.Context(), "acme", "models", 7)
	errorResponse(t, err, http.StatusNotFound)

	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.NotEmpty(t, resp.Header.Get("X-GitHub-Request-Id"))
	assert.Equal(t, 5000, resp.Rate.Limit)
	assert.Positive(t, resp.Rate.Remaining)
	assert.WithinDuration(t, time.Now().Add(time.Hour), resp.Rate.Reset.Time, time.Minute)
	assert.Equal(t, "core", resp.Header.Get("X-RateLimit-Resource"))
	assert.Equal(t, resp.Header.Get("X-GitHub-Request-Id"), s.Requests()[0].ID)
}

func TestNotFound(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	tests := []struct {
		name, method, path string
	}{
		{"another repository is not found", "GET", "/repos/acme/other/pulls"},
		{"another owner is not found", "GET", "/repos/someone/models/pulls"},
		{"an unknown route is not found", "GET", "/repos/acme/models/releases"},
		{"a known path with another method is not found", "DELETE", "/repos/acme/models/pulls"},
		{"a pull request number that is not a number is not found", "GET", "/repos/acme/models/pulls/abc"},
		{"an unknown route under an issue is not found", "GET", "/repos/acme/models/issues/1/events"},
		{"an unknown route under a commit is not found", "GET", "/repos/acme/models/commits/abc/files"},
		{"the root is not found", "GET", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := raw(t, s, tt.method, tt.path, "Bearer "+testToken, "")
			assert.Equal(t, http.StatusNotFound, status)
			assert.Equal(t, "Not Found", body["message"])
		})
	}
}

func TestOwnerAndRepositoryMatchCaseInsensitively(t *testing.T) {
	_, c := newTestServer(t, Options{Owner: "Acme", Repo: "Models"})
	_, resp, err := c.PullRequests.List(t.Context(), "acme", "MODELS", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestMalformedBodies(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	s.OpenPR("feature", "main", "t", "")
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantMessage              string
	}{
		{"broken JSON is a 400", "POST", "/repos/acme/models/pulls", `{"title":`, 400, "Problems parsing JSON"},
		{"broken JSON in a comment is a 400", "POST", "/repos/acme/models/issues/1/comments", `{body}`, 400, "Problems parsing JSON"},
		{"a number where a string belongs is a 422", "POST", "/repos/acme/models/statuses/abc", `{"state":5}`, 422,
			"Invalid request.\n\nFor 'properties/state', number is not a string."},
		{"missing required fields are named", "POST", "/repos/acme/models/pulls", `{"title":"t"}`, 422,
			"Invalid request.\n\n\"head\", \"base\" weren't supplied."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := raw(t, s, tt.method, tt.path, "Bearer "+testToken, tt.body)
			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, tt.wantMessage, body["message"])
		})
	}
}

func TestRequestLogHoldsWhatWasSent(t *testing.T) {
	s, c := newTestServer(t, Options{})
	const canary = "canary-7f3e"
	_, _, err := c.PullRequests.Create(t.Context(), "acme", "models", &github.NewPullRequest{
		Title: github.String("promote"), Head: github.String("feature"), Base: github.String("main"),
		Body: github.String("evidence " + canary),
	})
	require.NoError(t, err)
	_, _, err = c.PullRequests.List(t.Context(), "acme", "models", &github.PullRequestListOptions{State: "all"})
	require.NoError(t, err)

	reqs := s.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "POST", reqs[0].Method)
	assert.Equal(t, "/repos/acme/models/pulls", reqs[0].Path)
	assert.Equal(t, "Bearer "+testToken, reqs[0].Authorization)
	assert.Contains(t, string(reqs[0].Body), canary, "a canary in a body is found")
	assert.Equal(t, http.StatusCreated, reqs[0].Status)
	assert.Equal(t, "all", reqs[1].Query.Get("state"))
	assert.Equal(t, http.StatusOK, reqs[1].Status)

	reqs[0].Body[0] = 'X'
	assert.NotEqual(t, byte('X'), s.Requests()[0].Body[0], "Requests returns copies")
}

func TestRequestLogCapsBodies(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	status, _ := raw(t, s, "POST", "/repos/acme/models/pulls", "Bearer "+testToken, `{"title":"`+strings.Repeat("x", maxLoggedBody)+`"}`)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	req := s.Requests()[0]
	assert.Len(t, req.Body, maxLoggedBody)
	assert.True(t, req.BodyTruncated)
}
