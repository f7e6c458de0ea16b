package githubtest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newPR is the request Ferry makes to open a promotion pull request.
func newPR(head, base string) *github.NewPullRequest {
	return &github.NewPullRequest{
		Title: github.String("promote " + head),
		Head:  github.String(head),
		Base:  github.String(base),
		Body:  github.String("evidence"),
	}
}

func TestCreatePullRequest(t *testing.T) {
	s, c := newTestServer(t, Options{})
	pr, resp, err := c.PullRequests.Create(t.Context(), "acme", "models", newPR("ferry/promote/fraud/prod", "main"))
	require.NoError(t, err)

	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, pr.GetURL(), resp.Header.Get("Location"))
	assert.Equal(t, 1, pr.GetNumber())
	assert.Equal(t, "open", pr.GetState())
	assert.Equal(t, "promote ferry/promote/fraud/prod", pr.GetTitle())
	assert.Equal(t, "evidence", pr.GetBody())
	assert.Equal(t, "ferry/promote/fraud/prod", pr.GetHead().GetRef())
	assert.Equal(t, "acme:ferry/promote/fraud/prod", pr.GetHead().GetLabel())
	assert.Equal(t, "main", pr.GetBase().GetRef())
	assert.Equal(t, "acme/models", pr.GetBase().GetRepo().GetFullName())
	assert.Equal(t, DefaultLogin, pr.GetUser().GetLogin())
	assert.False(t, pr.GetMerged())
	assert.NotNil(t, pr.Merged, "the full shape carries merged")
	assert.True(t, strings.HasSuffix(pr.GetHTMLURL(), "/acme/models/pull/1"), pr.GetHTMLURL())

	held, ok := s.PullRequest(1)
	require.True(t, ok)
	assert.Equal(t, "ferry/promote/fraud/prod", held.Head)
	assert.Equal(t, DefaultLogin, held.Author)
}

func TestCreateRefusesWhatGitHubRefuses(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		seed        func(s *Server)
		pr          *github.NewPullRequest
		wantMessage string
		wantError   github.Error
	}{
		{
			name:        "a second open pull request for the same head and base is refused",
			seed:        func(s *Server) { s.OpenPR("ferry/promote/a/prod", "main", "t", "") },
			pr:          newPR("ferry/promote/a/prod", "main"),
			wantMessage: "Validation Failed",
			wantError: github.Error{Resource: "PullRequest", Code: "custom",
				Message: "A pull request already exists for acme:ferry/promote/a/prod."},
		},
		{
			name:        "a head given as owner:branch is the same head",
			seed:        func(s *Server) { s.OpenPR("ferry/promote/a/prod", "main", "t", "") },
			pr:          newPR("acme:ferry/promote/a/prod", "main"),
			wantMessage: "Validation Failed",
			wantError: github.Error{Resource: "PullRequest", Code: "custom",
				Message: "A pull request already exists for acme:ferry/promote/a/prod."},
		},
		{
			name:        "a head branch that does not exist is invalid",
			opts:        Options{BranchExists: func(b string) bool { return b == "exists" }},
			pr:          newPR("gone", "main"),
			wantMessage: "Validation Failed",
			wantError:   github.Error{Resource: "PullRequest", Field: "head", Code: "invalid"},
		},
		{
			name:        "a head in another owner is invalid",
			pr:          newPR("someone:feature", "main"),
			wantMessage: "Validation Failed",
			wantError:   github.Error{Resource: "PullRequest", Field: "head", Code: "invalid"},
		},
		{
			name:        "a head equal to its base has no commits",
			pr:          newPR("main", "main"),
			wantMessage: "Validation Failed",
			wantError:   github.Error{Resource: "PullRequest", Code: "custom", Message: "No commits between main and main"},
		},
		{
			name: "a body over 65536 characters is too long",
			pr: &github.NewPullRequest{Title: github.String("t"), Head: github.String("f"), Base: github.String("main"),
				Body: github.String(strings.Repeat("x", 65537))},
			wantMessage: "Validation Failed",
			wantError: github.Error{Resource: "Issue", Field: "body", Code: "custom",
				Message: "body is too long (maximum is 65536 characters)"},
		},
		{
			name:        "a missing base is not supplied",
			pr:          &github.NewPullRequest{Title: github.String("t"), Head: github.String("f")},
			wantMessage: "Invalid request.\n\n\"base\" wasn't supplied.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newTestServer(t, tt.opts)
			if tt.seed != nil {
				tt.seed(s)
			}
			before := len(s.PullRequests())
			_, _, err := c.PullRequests.Create(t.Context(), "acme", "models", tt.pr)
			er := errorResponse(t, err, http.StatusUnprocessableEntity)
			assert.Equal(t, tt.wantMessage, er.Message)
			if tt.wantError != (github.Error{}) {
				require.Len(t, er.Errors, 1)
				assert.Equal(t, tt.wantError, er.Errors[0])
				assert.Equal(t, docsCreatePull, er.DocumentationURL)
			}
			assert.Len(t, s.PullRequests(), before, "nothing was created")
		})
	}
}

func TestDuplicateErrorReadsAsGitHubs(t *testing.T) {
	_, c := newTestServer(t, Options{})
	_, _, err := c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
	require.NoError(t, err)
	_, _, err = c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
	errorResponse(t, err, http.StatusUnprocessableEntity)
	assert.Contains(t, err.Error(), "A pull request already exists", "callers that match the text find it")
}

func TestAClosedPullRequestDoesNotBlockANewOne(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Close(s.OpenPR("feature", "main", "t", ""))
	pr, _, err := c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
	require.NoError(t, err)
	assert.Equal(t, 2, pr.GetNumber())
}

func TestListByHead(t *testing.T) {
	s, c := newTestServer(t, Options{})
	merged := s.OpenPR("ferry/promote/a/prod", "main", "first", "")
	s.Merge(merged)
	closed := s.OpenPR("ferry/promote/a/prod", "main", "second", "")
	s.Close(closed)
	open := s.OpenPR("ferry/promote/a/prod", "main", "third", "")
	other := s.OpenPR("ferry/promote/b/prod", "main", "other", "")

	tests := []struct {
		name  string
		opts  github.PullRequestListOptions
		wants []int
	}{
		{"state all with owner:branch finds closed and merged ones, newest first",
			github.PullRequestListOptions{State: "all", Head: "acme:ferry/promote/a/prod"}, []int{open, closed, merged}},
		{"the default state is open",
			github.PullRequestListOptions{Head: "acme:ferry/promote/a/prod"}, []int{open}},
		{"state closed finds closed and merged ones",
			github.PullRequestListOptions{State: "closed", Head: "acme:ferry/promote/a/prod"}, []int{closed, merged}},
		{"a head without the owner does not filter, as on GitHub",
			github.PullRequestListOptions{Head: "ferry/promote/a/prod"}, []int{other, open}},
		{"a head in another owner finds nothing",
			github.PullRequestListOptions{State: "all", Head: "someone:ferry/promote/a/prod"}, []int{}},
		{"the owner of a head matches case-insensitively",
			github.PullRequestListOptions{Head: "ACME:ferry/promote/b/prod"}, []int{other}},
		{"base filters",
			github.PullRequestListOptions{State: "all", Base: "release"}, []int{}},
		{"direction asc lists oldest first",
			github.PullRequestListOptions{State: "all", Direction: "asc"}, []int{merged, closed, open, other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prs, _, err := c.PullRequests.List(t.Context(), "acme", "models", &tt.opts)
			require.NoError(t, err)
			got := []int{}
			for _, pr := range prs {
				got = append(got, pr.GetNumber())
			}
			assert.Equal(t, tt.wants, got)
		})
	}
}

func TestAListedPullRequestHasMergedAtButNoMerged(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.Merge(s.OpenPR("feature", "main", "t", ""))

	prs, _, err := c.PullRequests.List(t.Context(), "acme", "models", &github.PullRequestListOptions{State: "all"})
	require.NoError(t, err)
	require.Len(t, prs, 1)
	assert.Nil(t, prs[0].Merged, "GitHub's list shape has no merged; read merged_at")
	assert.NotNil(t, prs[0].MergedAt)
	assert.Equal(t, "closed", prs[0].GetState())

	pr, _, err := c.PullRequests.Get(t.Context(), "acme", "models", 1)
	require.NoError(t, err)
	assert.True(t, pr.GetMerged())
	assert.Equal(t, personLogin, pr.GetMergedBy().GetLogin())
}

func TestPaginationWalksEveryPage(t *testing.T) {
	s, c := newTestServer(t, Options{})
	for i := range 150 {
		s.OpenPR(fmt.Sprintf("feature-%d", i), "main", "t", "")
	}
	opts := &github.PullRequestListOptions{ListOptions: github.ListOptions{PerPage: 50}}
	var numbers []int
	pages := 0
	for {
		prs, resp, err := c.PullRequests.List(t.Context(), "acme", "models", opts)
		require.NoError(t, err)
		pages++
		if pages == 1 {
			assert.Equal(t, 3, resp.LastPage)
			assert.Zero(t, resp.PrevPage)
		}
		for _, pr := range prs {
			numbers = append(numbers, pr.GetNumber())
		}
		if resp.NextPage == 0 {
			assert.Equal(t, 2, resp.PrevPage)
			assert.Equal(t, 1, resp.FirstPage)
			break
		}
		opts.Page = resp.NextPage
	}
	assert.Equal(t, 3, pages)
	require.Len(t, numbers, 150)
	assert.Equal(t, 150, numbers[0], "newest first")
	assert.Equal(t, 1, numbers[149])
}

func TestPageSizes(t *testing.T) {
	s, c := newTestServer(t, Options{})
	for i := range 120 {
		s.OpenPR(fmt.Sprintf("feature-%d", i), "main", "t", "")
	}
	tests := []struct {
		name     string
		opts     github.ListOptions
		wantLen  int
		wantNext int
	}{
		{"the default page holds 30", github.ListOptions{}, 30, 2},
		{"per_page is capped at 100", github.ListOptions{PerPage: 500}, 100, 2},
		{"the last page holds the rest", github.ListOptions{PerPage: 100, Page: 2}, 20, 0},
		{"a page past the end is empty", github.ListOptions{PerPage: 100, Page: 9}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prs, resp, err := c.PullRequests.List(t.Context(), "acme", "models", &github.PullRequestListOptions{ListOptions: tt.opts})
			require.NoError(t, err)
			assert.Len(t, prs, tt.wantLen)
			assert.Equal(t, tt.wantNext, resp.NextPage)
		})
	}
}

func TestEditPullRequest(t *testing.T) {
	s, c := newTestServer(t, Options{})
	n := s.OpenPR("feature", "main", "old", "old body")

	pr, _, err := c.PullRequests.Edit(t.Context(), "acme", "models", n, &github.PullRequest{
		Title: github.String("new"), Body: github.String("new body"), Base: &github.PullRequestBranch{Ref: github.String("release")},
	})
	require.NoError(t, err)
	assert.Equal(t, "new", pr.GetTitle())
	assert.Equal(t, "new body", pr.GetBody())
	assert.Equal(t, "release", pr.GetBase().GetRef())

	pr, _, err = c.PullRequests.Edit(t.Context(), "acme", "models", n, &github.PullRequest{State: github.String("closed")})
	require.NoError(t, err)
	assert.Equal(t, "closed", pr.GetState())
	assert.NotNil(t, pr.ClosedAt)
	held, _ := s.PullRequest(n)
	assert.Equal(t, "closed", held.State)
	assert.False(t, held.Merged)
}

func TestEditRefusesWhatGitHubRefuses(t *testing.T) {
	tests := []struct {
		name string
		seed func(s *Server) int
		edit string // a raw PATCH body
	}{
		{"an unknown state is invalid", func(s *Server) int { return s.OpenPR("f", "main", "t", "") }, `{"state":"merged"}`},
		{"an empty title is refused", func(s *Server) int { return s.OpenPR("f", "main", "t", "") }, `{"title":" "}`},
		{"a new base on a closed pull request is refused", func(s *Server) int {
			n := s.OpenPR("f", "main", "t", "")
			s.Close(n)
			return n
		}, `{"base":"release"}`},
		{"reopening a merged pull request is refused", func(s *Server) int {
			n := s.OpenPR("f", "main", "t", "")
			s.Merge(n)
			return n
		}, `{"state":"open"}`},
		{"reopening beside an open one for the same head and base is refused", func(s *Server) int {
			n := s.OpenPR("f", "main", "t", "")
			s.Close(n)
			s.OpenPR("f", "main", "t", "")
			return n
		}, `{"state":"open"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, Options{})
			n := tt.seed(s)
			before, _ := s.PullRequest(n)
			status, body := raw(t, s, "PATCH", fmt.Sprintf("/repos/acme/models/pulls/%d", n), "Bearer "+testToken, tt.edit)
			assert.Equal(t, http.StatusUnprocessableEntity, status, "body: %v", body)
			after, _ := s.PullRequest(n)
			assert.Equal(t, before, after, "nothing changed")
		})
	}
}

func TestHelpersRefuseWhatAPersonCouldNotDo(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := New(rec, Options{})
	n := s.OpenPR("f", "main", "t", "")
	assert.Zero(t, s.OpenPR("f", "main", "again", ""), "a duplicate is not opened")
	s.Merge(n)
	s.Merge(n)
	s.Close(99)
	assert.Len(t, rec.errors(), 3)
	assert.Len(t, s.PullRequests(), 1)
}

func TestBranchSHAFollowsAnOpenPullRequestAndFreezesAtClose(t *testing.T) {
	var mu sync.Mutex
	shas := map[string]string{"feature": "aaa", "main": "111"}
	set := func(branch, sha string) {
		mu.Lock()
		defer mu.Unlock()
		shas[branch] = sha
	}
	s, c := newTestServer(t, Options{BranchSHA: func(b string) string {
		mu.Lock()
		defer mu.Unlock()
		return shas[b]
	}})
	n := s.OpenPR("feature", "main", "t", "")
	head := func() string {
		pr, _, err := c.PullRequests.Get(t.Context(), "acme", "models", n)
		require.NoError(t, err)
		return pr.GetHead().GetSHA()
	}
	assert.Equal(t, "aaa", head())
	set("feature", "bbb")
	assert.Equal(t, "bbb", head(), "a push to the head shows")
	s.Merge(n)
	set("feature", "ccc")
	assert.Equal(t, "bbb", head(), "a merged pull request keeps its last head")
}

func TestConcurrentCreatesOpenOnePullRequest(t *testing.T) {
	s, c := newTestServer(t, Options{})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, _, errs[i] = c.PullRequests.Create(t.Context(), "acme", "models", newPR("feature", "main"))
		})
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		if err == nil {
			created++
		}
	}
	assert.Equal(t, 1, created)
	assert.Len(t, s.PullRequests(), 1)
}
