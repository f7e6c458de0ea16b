package githubtest

import (
	"fmt"
	"testing"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListCheckRuns(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.SetCheckRun(sha, "build", "completed", "success")
	s.SetCheckRun(sha, "lint", "in_progress", "")
	s.SetCheckRun("other", "build", "completed", "failure")

	res, _, err := c.Checks.ListCheckRunsForRef(t.Context(), "acme", "models", sha, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, res.GetTotal())
	require.Len(t, res.CheckRuns, 2)

	byName := map[string]*github.CheckRun{}
	for _, run := range res.CheckRuns {
		byName[run.GetName()] = run
		assert.Equal(t, sha, run.GetHeadSHA())
		assert.NotZero(t, run.GetID())
		assert.NotEmpty(t, run.GetHTMLURL())
	}
	assert.Equal(t, "completed", byName["build"].GetStatus())
	assert.Equal(t, "success", byName["build"].GetConclusion())
	assert.NotNil(t, byName["build"].CompletedAt)
	assert.Equal(t, "in_progress", byName["lint"].GetStatus())
	assert.Nil(t, byName["lint"].Conclusion, "a run in progress has no conclusion")
}

func TestARerunHidesTheOldRun(t *testing.T) {
	s, c := newTestServer(t, Options{})
	s.SetCheckRun(sha, "build", "completed", "failure")
	s.SetCheckRun(sha, "build", "queued", "")
	s.SetCheckRun(sha, "build", "in_progress", "")

	tests := []struct {
		name       string
		opts       github.ListCheckRunsOptions
		wantStatus []string
	}{
		{"the default lists the latest run of each name", github.ListCheckRunsOptions{}, []string{"in_progress"}},
		{"filter all lists every run, newest first", github.ListCheckRunsOptions{Filter: github.String("all")}, []string{"in_progress", "completed"}},
		{"status filters", github.ListCheckRunsOptions{Filter: github.String("all"), Status: github.String("completed")}, []string{"completed"}},
		{"check_name filters", github.ListCheckRunsOptions{CheckName: github.String("lint")}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _, err := c.Checks.ListCheckRunsForRef(t.Context(), "acme", "models", sha, &tt.opts)
			require.NoError(t, err)
			got := []string{}
			for _, run := range res.CheckRuns {
				got = append(got, run.GetStatus())
			}
			assert.Equal(t, tt.wantStatus, got)
			assert.Equal(t, len(tt.wantStatus), res.GetTotal())
		})
	}
}

func TestCheckRunsPaginate(t *testing.T) {
	s, c := newTestServer(t, Options{})
	for i := range 35 {
		s.SetCheckRun(sha, fmt.Sprintf("check-%d", i), "completed", "success")
	}
	res, resp, err := c.Checks.ListCheckRunsForRef(t.Context(), "acme", "models", sha, nil)
	require.NoError(t, err)
	assert.Equal(t, 35, res.GetTotal(), "total_count counts every page")
	assert.Len(t, res.CheckRuns, 30)
	assert.Equal(t, 2, resp.NextPage)
}

func TestSetCheckRunRefusesWhatGitHubRefuses(t *testing.T) {
	tests := []struct {
		name, status, conclusion string
	}{
		{"an unknown status is refused", "done", ""},
		{"a completed run without a conclusion is refused", "completed", ""},
		{"an unknown conclusion is refused", "completed", "passed"},
		{"a queued run with a conclusion is refused", "queued", "success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			s := New(rec, Options{})
			s.SetCheckRun(sha, "build", tt.status, tt.conclusion)
			assert.Len(t, rec.errors(), 1)
			res, _, err := s.Client("").Checks.ListCheckRunsForRef(t.Context(), "acme", "models", sha, nil)
			require.NoError(t, err)
			assert.Zero(t, res.GetTotal())
		})
	}
}
