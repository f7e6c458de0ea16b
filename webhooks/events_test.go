package webhooks

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	headSHA = "7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c"
	baseSHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
)

// only sends one signed delivery and returns the one event it enqueued.
func (f *fixture) only(t *testing.T, event string, body []byte) Event {
	t.Helper()
	rec := f.send(req{event: event, body: body})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	events := f.q.taken()
	require.Len(t, events, 1)
	return events[0]
}

func TestAnOpenedPullRequestCarriesWhatAPreviewNeeds(t *testing.T) {
	f := newFixture(t)
	ev := f.only(t, "pull_request", payload(t, "pull_request.json"))
	assert.Equal(t, KindPullRequest, ev.Kind)
	assert.Equal(t, "ml-models", ev.Repository)
	assert.Equal(t, &PullRequest{
		Number: 42, Action: "opened",
		HeadRef: "ferry/promote/fraud-detector/staging", HeadSHA: headSHA,
		BaseRef: "main", BaseSHA: baseSHA,
		HeadRepoFullName: "acme/ml-models",
	}, ev.PullRequest)
	assert.Nil(t, ev.Push)
	assert.Nil(t, ev.Checks)
}

func TestAPullRequestClosedWithoutMergingReachesTheEngine(t *testing.T) {
	f := newFixture(t)
	ev := f.only(t, "pull_request", payload(t, "pull_request.json", `"action": "opened"`, `"action": "closed"`, `"state": "open"`, `"state": "closed"`))
	require.NotNil(t, ev.PullRequest)
	assert.Equal(t, "closed", ev.PullRequest.Action)
	assert.False(t, ev.PullRequest.Merged, "closed, not merged: the engine cancels the pending preview")
}

func TestADraftPullRequestSaysSo(t *testing.T) {
	f := newFixture(t)
	ev := f.only(t, "pull_request", payload(t, "pull_request.json", `"draft": false`, `"draft": true`))
	assert.True(t, ev.PullRequest.Draft)
}

func TestAPullRequestFromAForkIsFlagged(t *testing.T) {
	cases := []struct {
		name     string
		edits    []string
		fork     bool
		headRepo string
	}{
		{"a head in the base repository is not a fork", nil, false, "acme/ml-models"},
		{"a head in the base repository, named in another case, is not a fork",
			[]string{`"label": "acme:ferry/promote/fraud-detector/staging",
      "ref": "ferry/promote/fraud-detector/staging",
      "sha": "7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c",
      "repo": {"id": 35129377, "name": "ml-models", "full_name": "acme/ml-models"}`, `"label": "acme:ferry/promote/fraud-detector/staging",
      "ref": "ferry/promote/fraud-detector/staging",
      "sha": "7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c",
      "repo": {"id": 35129377, "name": "ml-models", "full_name": "ACME/ML-Models"}`}, false, "ACME/ML-Models"},
		{"a head in another owner's repository is a fork",
			[]string{`"repo": {"id": 35129377, "name": "ml-models", "full_name": "acme/ml-models"}`,
				`"repo": {"id": 99, "name": "ml-models", "full_name": "mallory/ml-models"}`}, true, "mallory/ml-models"},
		{"a head whose fork was deleted is a fork",
			[]string{`"repo": {"id": 35129377, "name": "ml-models", "full_name": "acme/ml-models"}`, `"repo": null`}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// The first "repo" in the fixture is the head's.
			ev := f.only(t, "pull_request", payload(t, "pull_request.json", tc.edits...))
			assert.Equal(t, tc.fork, ev.PullRequest.Fork)
			assert.Equal(t, tc.headRepo, ev.PullRequest.HeadRepoFullName)
			assert.Equal(t, "acme/ml-models", ev.FullName, "the event stays the base repository's")
		})
	}
}

func TestAPullRequestWithoutAHeadSHAIsABadRequest(t *testing.T) {
	f := newFixture(t)
	rec := f.send(req{event: "pull_request", body: payload(t, "pull_request.json", `"sha": "7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c"`, `"sha": "main; rm -rf /"`)})
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "pull_request.head.sha")
	assert.Empty(t, f.q.taken())
}

func TestACompletedCheckRunAsksForARecheckOfItsCommit(t *testing.T) {
	f := newFixture(t)
	ev := f.only(t, "check_run", payload(t, "check_run.json"))
	assert.Equal(t, KindChecks, ev.Kind)
	assert.Equal(t, "ml-models", ev.Repository)
	assert.Equal(t, "acme/ml-models", ev.FullName)
	assert.Equal(t, &Checks{
		Event: "check_run", Action: "completed", SHA: headSHA, Name: "validate",
		App: "github-actions", State: "completed", Conclusion: "success",
	}, ev.Checks)
	assert.Nil(t, ev.PullRequest)
}

func TestACompletedCheckSuiteAsksForARecheckOfItsCommit(t *testing.T) {
	f := newFixture(t)
	ev := f.only(t, "check_suite", payload(t, "check_suite.json"))
	assert.Equal(t, KindChecks, ev.Kind)
	assert.Equal(t, &Checks{
		Event: "check_suite", Action: "completed", SHA: headSHA,
		App: "github-actions", State: "completed", Conclusion: "failure",
	}, ev.Checks)
}

func TestACommitStatusAsksForARecheckOfItsCommit(t *testing.T) {
	f := newFixture(t)
	ev := f.only(t, "status", payload(t, "status.json"))
	assert.Equal(t, KindChecks, ev.Kind)
	assert.Equal(t, &Checks{Event: "status", SHA: headSHA, Name: "ci/model-eval", State: "pending"}, ev.Checks)
}

func TestCheckEvents(t *testing.T) {
	untracked := []string{`"full_name": "acme/ml-models"`, `"full_name": "acme/website"`,
		`"clone_url": "https://github.com/acme/ml-models.git"`, `"clone_url": "https://github.com/acme/website.git"`}
	cases := []struct {
		name, event, fixture string
		edits                []string
		status               int
		answer               string
		enqueued             int
	}{
		{"a created check run is enqueued", "check_run", "check_run.json", []string{`"action": "completed"`, `"action": "created"`}, 202, "accepted", 1},
		{"a rerequested check run is enqueued", "check_run", "check_run.json", []string{`"action": "completed"`, `"action": "rerequested"`}, 202, "accepted", 1},
		{"a check run's requested action is enqueued", "check_run", "check_run.json", []string{`"action": "completed"`, `"action": "requested_action"`}, 202, "accepted", 1},
		{"a check run on any branch is enqueued: checks need no branch match", "check_run", "check_run.json",
			[]string{`"head_branch": "ferry/promote/fraud-detector/staging"`, `"head_branch": "experiment"`}, 202, "accepted", 1},
		{"a check run of an unknown action is ignored", "check_run", "check_run.json", []string{`"action": "completed"`, `"action": "deleted"`}, 202, "ignored: check run action deleted", 0},
		{"a check run for an untracked repository is ignored", "check_run", "check_run.json", untracked, 202, "ignored: untracked repository", 0},
		{"a requested check suite is ignored", "check_suite", "check_suite.json", []string{`"action": "completed"`, `"action": "requested"`}, 202, "ignored: check suite action requested", 0},
		{"a rerequested check suite is ignored", "check_suite", "check_suite.json", []string{`"action": "completed"`, `"action": "rerequested"`}, 202, "ignored: check suite action rerequested", 0},
		{"a check suite for an untracked repository is ignored", "check_suite", "check_suite.json", untracked, 202, "ignored: untracked repository", 0},
		{"a successful status is enqueued", "status", "status.json", []string{`"state": "pending"`, `"state": "success"`}, 202, "accepted", 1},
		{"a failed status is enqueued", "status", "status.json", []string{`"state": "pending"`, `"state": "failure"`}, 202, "accepted", 1},
		{"a status for an untracked repository is ignored", "status", "status.json", untracked, 202, "ignored: untracked repository", 0},
		{"a status matched by clone URL is enqueued", "status", "status.json", []string{`"full_name": "acme/ml-models"`, `"full_name": "other/vision"`,
			`"clone_url": "https://github.com/acme/ml-models.git"`, `"clone_url": "https://github.com/other/vision.git"`}, 202, "accepted", 1},
		{"a check run without a commit sha is a bad request", "check_run", "check_run.json",
			[]string{`"head_sha": "7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c"`, `"head_sha": ""`}, 400, "check_run needs a commit sha", 0},
		{"a status whose sha is not a commit id is a bad request", "status", "status.json",
			[]string{`"sha": "7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c"`, `"sha": "refs/heads/main"`}, 400, "status needs a commit sha", 0},
		{"a check suite without its check_suite is a bad request", "check_suite", "", nil, 400, "check_suite needs", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			body := []byte(`{"action":"completed","repository":{"full_name":"acme/ml-models"}}`)
			if tc.fixture != "" {
				body = payload(t, tc.fixture, tc.edits...)
			}
			rec := f.send(req{event: tc.event, body: body})
			assert.Equal(t, tc.status, rec.Code)
			assert.Contains(t, rec.Body.String(), tc.answer)
			assert.Len(t, f.q.taken(), tc.enqueued)
		})
	}
}

func TestTheNewEventsHaveTheirOwnMetricLabels(t *testing.T) {
	f := newFixture(t)
	for event, fixture := range map[string]string{"check_run": "check_run.json", "check_suite": "check_suite.json", "status": "status.json"} {
		f.send(req{event: event, body: payload(t, fixture)})
		assert.Equal(t, 1.0, testutil.ToFloat64(f.h.requests.WithLabelValues(event, outcomeAccepted)), event)
	}
	assert.Equal(t, "other", eventLabel("check_runs"), "a near miss is still other")
}
