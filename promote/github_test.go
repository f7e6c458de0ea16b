package promote

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/githubtest"
)

const token = "ghs_TOKENCANARY0123456789"

func newGitHub(t *testing.T, mutate ...func(*ClientOptions)) (*GitHub, *githubtest.Server) {
	t.Helper()
	return newGitHubWith(t, githubtest.Options{}, mutate...)
}

func newGitHubWith(t *testing.T, srvOpts githubtest.Options, mutate ...func(*ClientOptions)) (*GitHub, *githubtest.Server) {
	t.Helper()
	srvOpts.Tokens = []string{token}
	srv := githubtest.New(t, srvOpts)
	opts := ClientOptions{APIURL: srv.URL, Token: token, MaxWait: 3 * time.Second}
	for _, m := range mutate {
		m(&opts)
	}
	c, err := NewClient(opts)
	require.NoError(t, err)
	return c.Repository(githubtest.DefaultOwner, githubtest.DefaultRepo), srv
}

func promotionPR(body string) PullRequest {
	return PullRequest{Head: Branch("fraud-detector", "staging"), Base: "main", HeadSHA: "abc", Title: Title("fraud-detector", "1.5.0", "staging"), Body: body}
}

func TestAPromotionOpensOnePullRequestAndAdoptsItEveryTimeAfter(t *testing.T) {
	gh, srv := newGitHub(t)
	first, err := gh.EnsurePullRequest(t.Context(), promotionPR("first"))
	require.NoError(t, err)
	assert.Equal(t, PRCreated, first.Action)

	again, err := gh.EnsurePullRequest(t.Context(), promotionPR("first"))
	require.NoError(t, err)
	assert.Equal(t, PRResult{Number: first.Number, URL: first.URL, Action: PRUnchanged}, again)

	newer, err := gh.EnsurePullRequest(t.Context(), promotionPR("second"))
	require.NoError(t, err)
	assert.Equal(t, PRUpdated, newer.Action, "a newer version updates the same PR")

	prs := srv.PullRequests()
	require.Len(t, prs, 1)
	assert.Equal(t, "Promote fraud-detector 1.5.0 to staging", prs[0].Title)
	assert.Equal(t, "second", prs[0].Body)
	assert.Equal(t, "ferry/promote/fraud-detector/staging", prs[0].Head)
	assert.ElementsMatch(t, []string{"ferry", "promotion"}, prs[0].Labels)
}

func TestAPullRequestGitHubSaysAlreadyExistsIsAdopted(t *testing.T) {
	gh, srv := newGitHub(t)
	// The list misses it (a replica opened it a moment ago); the create says 422.
	n := srv.OpenPR("ferry/promote/fraud-detector/staging", "main", "by another replica", "")
	srv.Inject(githubtest.Fault{Method: http.MethodGet, Path: "/repos/{o}/{r}/pulls", Status: http.StatusOK, Body: "[]"})
	res, err := gh.EnsurePullRequest(t.Context(), promotionPR("body"))
	require.NoError(t, err)
	assert.Equal(t, n, res.Number)
	assert.Equal(t, PRUpdated, res.Action)
	assert.Len(t, srv.PullRequests(), 1)
}

func TestAFiveHundredAndTwoAfterTheCreateLeavesOnePullRequest(t *testing.T) {
	gh, srv := newGitHub(t)
	srv.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/pulls", Status: http.StatusBadGateway, AfterHandling: true})
	_, err := gh.EnsurePullRequest(t.Context(), promotionPR("body"))
	require.Error(t, err, "the 502 is returned, not retried blindly")
	assert.True(t, IsTransient(err))

	res, err := gh.EnsurePullRequest(t.Context(), promotionPR("body"))
	require.NoError(t, err, "the retry looks first and finds the PR GitHub did create")
	assert.NotEqual(t, PRCreated, res.Action)
	assert.Len(t, srv.PullRequests(), 1)
}

func TestAMergedPromotionIsNotOpenedAgainButAClosedOneIs(t *testing.T) {
	head := "abc" // what the promotion branch points at
	gh, srv := newGitHubWith(t, githubtest.Options{BranchSHA: func(string) string { return head }})
	first, err := gh.EnsurePullRequest(t.Context(), promotionPR("body"))
	require.NoError(t, err)
	srv.Merge(first.Number)
	merged, err := gh.EnsurePullRequest(t.Context(), promotionPR("body"))
	require.NoError(t, err)
	assert.Equal(t, PRMerged, merged.Action, "same head commit, merged: nothing to do")

	head = "def"
	newer := promotionPR("body")
	newer.HeadSHA = head
	reopened, err := gh.EnsurePullRequest(t.Context(), newer)
	require.NoError(t, err)
	assert.Equal(t, PRCreated, reopened.Action, "new content after a merge is a new PR")
	srv.Close(reopened.Number)
	again, err := gh.EnsurePullRequest(t.Context(), newer)
	require.NoError(t, err)
	assert.Equal(t, PRCreated, again.Action, "closed without merging: a new PR")
	assert.Len(t, srv.PullRequests(), 3)
}

func TestTheHeadFilterCarriesTheOwner(t *testing.T) {
	gh, srv := newGitHub(t)
	srv.OpenPR("someone-elses-branch", "main", "unrelated", "")
	res, err := gh.EnsurePullRequest(t.Context(), promotionPR("body"))
	require.NoError(t, err)
	assert.Equal(t, PRCreated, res.Action, "the unrelated PR is not adopted")
	var sawHead bool
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/pulls") {
			assert.Equal(t, "acme:ferry/promote/fraud-detector/staging", r.Query.Get("head"))
			sawHead = true
		}
	}
	assert.True(t, sawHead)
}

func TestRateLimitsAreWaitedOutAsGitHubSays(t *testing.T) {
	cases := []struct {
		name  string
		fault githubtest.Fault
	}{
		{"a secondary limit with Retry-After", githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/statuses/{sha}", Secondary: true, RetryAfter: time.Second}},
		{"a 429 with Retry-After", githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/statuses/{sha}", Status: http.StatusTooManyRequests, RetryAfter: time.Second}},
		{"a primary limit resetting now", githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/statuses/{sha}", RateLimited: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gh, srv := newGitHub(t)
			srv.Inject(tc.fault)
			start := time.Now()
			require.NoError(t, gh.SetStatus(t.Context(), CommitStatus{SHA: "abc", Context: "ferry/dev", State: StateSuccess, Description: "ok"}))
			if tc.fault.RetryAfter > 0 {
				assert.GreaterOrEqual(t, time.Since(start), tc.fault.RetryAfter, "waited as told")
			}
			assert.Len(t, srv.Statuses("abc"), 1)
		})
	}
}

func TestAWaitLongerThanTheBoundIsATransientErrorNotASleep(t *testing.T) {
	gh, srv := newGitHub(t, func(o *ClientOptions) { o.MaxWait = 100 * time.Millisecond })
	srv.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/statuses/{sha}", Status: http.StatusTooManyRequests, RetryAfter: time.Hour})
	// A client that slept as told would meet this deadline, never return by itself.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := gh.SetStatus(ctx, CommitStatus{SHA: "abc", Context: "ferry/dev", State: StateSuccess})
	require.Error(t, err)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the client gave up at once rather than sleep an hour")
	assert.True(t, IsTransient(err))
	posts := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/statuses/abc") {
			posts++
		}
	}
	assert.Equal(t, 1, posts, "not sent again")
}

func TestReadsAreRetriedOnFiveHundredsAndWritesAreNot(t *testing.T) {
	gh, srv := newGitHub(t)
	srv.Inject(githubtest.Fault{Method: http.MethodGet, Path: "/repos/{o}/{r}/commits/{ref}/check-runs", Status: http.StatusBadGateway, Times: 2})
	srv.SetCheckRun("abc", "eval/accuracy", "completed", "success")
	checks, err := gh.RequiredChecks(t.Context(), "abc", []string{"eval/accuracy"})
	require.NoError(t, err)
	assert.Equal(t, CheckSuccess, checks[0].State)

	srv.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/statuses/{sha}", Status: http.StatusInternalServerError})
	err = gh.SetStatus(t.Context(), CommitStatus{SHA: "abc", Context: "ferry/dev", State: StatePending})
	require.Error(t, err)
	assert.True(t, IsTransient(err), "the caller retries it with backoff")
}

func TestPermissionsAndBadCredentialsAreNotTransient(t *testing.T) {
	gh, srv := newGitHub(t)
	srv.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/statuses/{sha}", Status: http.StatusForbidden})
	err := gh.SetStatus(t.Context(), CommitStatus{SHA: "abc", Context: "ferry/dev", State: StatePending})
	require.Error(t, err)
	assert.False(t, IsTransient(err), "a 403 without a rate limit needs a person")

	c, err := NewClient(ClientOptions{APIURL: srv.URL, Token: "wrong-token"})
	require.NoError(t, err)
	err = c.Repository(githubtest.DefaultOwner, githubtest.DefaultRepo).SetStatus(t.Context(), CommitStatus{SHA: "abc", Context: "ferry/dev", State: StatePending})
	require.Error(t, err)
	assert.False(t, IsTransient(err))
	assert.Contains(t, err.Error(), "401")
}

func TestRequiredChecksReadCheckRunsAndStatuses(t *testing.T) {
	gh, srv := newGitHub(t)
	srv.SetCheckRun("abc", "eval/accuracy", "completed", "success")
	srv.SetCheckRun("abc", "eval/latency", "in_progress", "")
	srv.SetCheckRun("abc", "lint", "completed", "skipped")
	srv.SetStatus("abc", "ci/legacy", "failure", "broke")
	checks, err := gh.RequiredChecks(t.Context(), "abc", []string{"eval/accuracy", "eval/latency", "lint", "ci/legacy", "never-reported"})
	require.NoError(t, err)
	assert.Equal(t, Checks{
		{Name: "eval/accuracy", State: CheckSuccess, Conclusion: "success", URL: checks[0].URL},
		{Name: "eval/latency", State: CheckPending, Conclusion: "in_progress", URL: checks[1].URL},
		{Name: "lint", State: CheckSuccess, Conclusion: "skipped", URL: checks[2].URL},
		{Name: "ci/legacy", State: CheckFailure, Conclusion: "failure", URL: checks[3].URL},
		{Name: "never-reported", State: CheckMissing},
	}, checks)
	assert.Equal(t, "ci/legacy: failure", checks.Failed().Names())
	assert.Equal(t, "eval/latency: pending (in_progress), never-reported: missing", checks.Waiting().Names())
}

func TestACommitStatusDescriptionIsOneLineOfAtMost140Characters(t *testing.T) {
	gh, srv := newGitHub(t)
	long := "tests: " + strings.Repeat("fraud-detector/smoke failed ", 20) + "\nsecond line"
	require.NoError(t, gh.SetStatus(t.Context(), CommitStatus{SHA: "abc", Context: "ferry/dev", State: StateFailure, Description: long}))
	got := srv.Statuses("abc")
	require.Len(t, got, 1)
	assert.LessOrEqual(t, len([]rune(got[0].Description)), 140)
	assert.True(t, strings.HasPrefix(got[0].Description, "tests: fraud-detector/smoke failed"))
	assert.NotContains(t, got[0].Description, "second line")
}

func TestTheTokenNeverAppearsInAnError(t *testing.T) {
	gh, srv := newGitHub(t)
	// A server that echoes the token in its message, as a misconfigured proxy might.
	srv.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/pulls", Status: http.StatusUnprocessableEntity,
		Body: `{"message": "Validation Failed: bad request with ` + token + `", "documentation_url": "https://docs.github.com/rest"}`})
	_, err := gh.EnsurePullRequest(t.Context(), promotionPR("body"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), token)
	var er *github.ErrorResponse
	assert.True(t, errors.As(err, &er), "the cause can still be classified")
	for _, r := range srv.Requests() {
		assert.NotContains(t, string(r.Body), token, "no request body carries the token")
	}
}

func TestTheTokenGoesOnlyToTheAPIHost(t *testing.T) {
	_, srv := newGitHub(t)
	for _, r := range srv.Requests() {
		assert.Equal(t, "Bearer "+token, r.Authorization)
	}
	c, err := NewClient(ClientOptions{APIURL: "ftp://example.com/"})
	assert.Nil(t, c)
	assert.ErrorContains(t, err, "expected https://api.github.com/")
}
