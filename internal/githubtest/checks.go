package githubtest

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// docsListCheckRuns is sent with the check-runs route's errors.
const docsListCheckRuns = "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference"

// checkStatus reports whether GitHub allows status for a check run.
func checkStatus(status string) bool {
	switch status {
	case "queued", "in_progress", "completed":
		return true
	}
	return false
}

// checkConclusion reports whether GitHub allows conclusion for a completed
// check run.
func checkConclusion(conclusion string) bool {
	switch conclusion {
	case "success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required":
		return true
	}
	return false
}

// checkRun is one run of a check on a commit.
type checkRun struct {
	id                     int64
	sha, name              string
	status, conclusion     string
	startedAt, completedAt time.Time
}

// checkRunJSON is GitHub's check run.
type checkRunJSON struct {
	ID           int64      `json:"id"`
	NodeID       string     `json:"node_id"`
	HeadSHA      string     `json:"head_sha"`
	ExternalID   string     `json:"external_id"`
	URL          string     `json:"url"`
	HTMLURL      string     `json:"html_url"`
	DetailsURL   string     `json:"details_url"`
	Status       string     `json:"status"`
	Conclusion   *string    `json:"conclusion"`
	StartedAt    time.Time  `json:"started_at"`
	CompletedAt  *time.Time `json:"completed_at"`
	Name         string     `json:"name"`
	App          appJSON    `json:"app"`
	PullRequests []struct{} `json:"pull_requests"`
}

// appJSON is the GitHub App a check run belongs to: the external CI.
type appJSON struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// checkRunsJSON is the check-runs route's answer.
type checkRunsJSON struct {
	TotalCount int            `json:"total_count"`
	CheckRuns  []checkRunJSON `json:"check_runs"`
}

// SetCheckRun reports check name on sha as an external CI would. status is
// queued, in_progress or completed; conclusion is "" unless completed, then
// one of success, failure, neutral, cancelled, skipped, timed_out or
// action_required. While the latest run of name on sha is not completed, it
// is updated; once it is, a new run starts (a re-run), which hides the old
// one from the default listing. Values GitHub refuses fail the test with
// t.Errorf and change nothing.
func (s *Server) SetCheckRun(sha, name, status, conclusion string) {
	switch {
	case !checkStatus(status):
		s.t.Errorf("githubtest: SetCheckRun: status %q is not queued, in_progress or completed", status)
		return
	case status == "completed" && !checkConclusion(conclusion):
		s.t.Errorf("githubtest: SetCheckRun: a completed run needs a conclusion, not %q", conclusion)
		return
	case status != "completed" && conclusion != "":
		s.t.Errorf("githubtest: SetCheckRun: a %s run has no conclusion, got %q", status, conclusion)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now()
	var run *checkRun
	for _, c := range s.checks {
		if c.sha == sha && c.name == name {
			run = c // the latest wins
		}
	}
	if run == nil || run.status == "completed" {
		run = &checkRun{id: s.newID(), sha: sha, name: name, startedAt: t}
		s.checks = append(s.checks, run)
	}
	run.status, run.conclusion = status, conclusion
	if status == "completed" {
		run.completedAt = t
	}
}

func (s *Server) renderCheckRun(r *http.Request, c *checkRun) checkRunJSON {
	out := checkRunJSON{
		ID:           c.id,
		NodeID:       nodeID("CR", c.id),
		HeadSHA:      c.sha,
		URL:          fmt.Sprintf("%s/check-runs/%d", s.repoAPI(r), c.id),
		HTMLURL:      fmt.Sprintf("%s/runs/%d", s.repoWeb(r), c.id),
		DetailsURL:   fmt.Sprintf("%s/runs/%d", s.repoWeb(r), c.id),
		Status:       c.status,
		StartedAt:    c.startedAt,
		Name:         c.name,
		App:          appJSON{ID: 15368, Slug: ciLogin, Name: "CI"},
		PullRequests: []struct{}{},
	}
	if c.conclusion != "" {
		conclusion := c.conclusion
		out.Conclusion = &conclusion
	}
	if t := c.completedAt; !t.IsZero() {
		out.CompletedAt = &t
	}
	return out
}

// listCheckRuns serves GET /repos/{owner}/{repo}/commits/{ref}/check-runs:
// newest first, filtered by check_name and status, and by filter (latest,
// the default: only the latest run of each name; all), paginated;
// total_count counts every run that passed the filters.
func (s *Server) listCheckRuns(w http.ResponseWriter, r *http.Request, ref string) {
	q := r.URL.Query()
	filter := cmp.Or(q.Get("filter"), "latest")
	status := q.Get("status")
	switch {
	case filter != "latest" && filter != "all":
		validationFailed(w, docsListCheckRuns, fieldError{Resource: "CheckRun", Field: "filter", Code: "invalid"})
		return
	case status != "" && !checkStatus(status):
		validationFailed(w, docsListCheckRuns, fieldError{Resource: "CheckRun", Field: "status", Code: "invalid"})
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var found []*checkRun
	seen := map[string]bool{}
	for _, c := range slices.Backward(s.checks) {
		switch {
		case c.sha != ref:
		case filter == "latest" && seen[c.name]:
		default:
			seen[c.name] = true
			if (q.Get("check_name") == "" || q.Get("check_name") == c.name) && (status == "" || status == c.status) {
				found = append(found, c)
			}
		}
	}
	out := checkRunsJSON{TotalCount: len(found), CheckRuns: []checkRunJSON{}}
	for _, c := range paginate(w, r, found) {
		out.CheckRuns = append(out.CheckRuns, s.renderCheckRun(r, c))
	}
	writeJSON(w, http.StatusOK, out)
}
