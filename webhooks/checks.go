package webhooks

import (
	"fmt"

	"github.com/google/go-github/v60/github"
)

// Checks says that a check on a commit changed. The engine re-reads the
// required checks of SHA from GitHub; the state here is what the payload
// said, a hint for logs, never the verdict. Checks run on any commit, so
// no branch is matched.
type Checks struct {
	// Event is GitHub's event name: check_run, check_suite or status.
	Event string
	// Action is GitHub's action for check_run (created, completed,
	// rerequested, requested_action) and check_suite (completed); empty for
	// status, which has none.
	Action string
	// SHA is the commit the check is on: check_run.head_sha,
	// check_suite.head_sha or status.sha.
	SHA string
	// Name is the check run's name or the status's context, as required
	// checks name them; empty for a check suite, which groups the runs of one
	// app.
	Name string
	// App is the slug of the GitHub App that owns the check run or suite;
	// empty for status.
	App string
	// State is the check's status (queued, in_progress, completed) or the
	// commit status's state (pending, success, failure, error).
	State string
	// Conclusion is a completed check's conclusion (success, failure,
	// neutral, cancelled, skipped, timed_out, action_required, stale).
	Conclusion string
}

// parseCheckRun turns a check_run payload into an Event, or says why it is
// ignored.
func (h *GitHub) parseCheckRun(body []byte) (*Event, ignored, error) {
	var p github.CheckRunEvent
	if err := unmarshal("check_run", body, &p); err != nil {
		return nil, "", err
	}
	run := p.GetCheckRun()
	if p.GetRepo().GetFullName() == "" || p.GetAction() == "" || p.CheckRun == nil {
		return nil, "", fmt.Errorf("%w: check_run needs action, repository.full_name and check_run", errBadPayload)
	}
	switch p.GetAction() {
	case "created", "completed", "rerequested", "requested_action":
	default:
		return nil, ignored("check run action " + p.GetAction()), nil
	}
	return h.checksEvent(p.GetRepo(), &Checks{
		Event: "check_run", Action: p.GetAction(),
		SHA: run.GetHeadSHA(), Name: run.GetName(), App: run.GetApp().GetSlug(),
		State: run.GetStatus(), Conclusion: run.GetConclusion(),
	})
}

// parseCheckSuite turns a check_suite payload into an Event, or says why it
// is ignored. Only a completed suite is news: requested and rerequested ask
// the suite's app to run checks, which report through check_run.
func (h *GitHub) parseCheckSuite(body []byte) (*Event, ignored, error) {
	var p github.CheckSuiteEvent
	if err := unmarshal("check_suite", body, &p); err != nil {
		return nil, "", err
	}
	suite := p.GetCheckSuite()
	if p.GetRepo().GetFullName() == "" || p.GetAction() == "" || p.CheckSuite == nil {
		return nil, "", fmt.Errorf("%w: check_suite needs action, repository.full_name and check_suite", errBadPayload)
	}
	if p.GetAction() != "completed" {
		return nil, ignored("check suite action " + p.GetAction()), nil
	}
	return h.checksEvent(p.GetRepo(), &Checks{
		Event: "check_suite", Action: p.GetAction(),
		SHA: suite.GetHeadSHA(), App: suite.GetApp().GetSlug(),
		State: suite.GetStatus(), Conclusion: suite.GetConclusion(),
	})
}

// parseStatus turns a status payload into an Event, whatever its state: a
// pending status matters as much as a final one, since it holds promotion.
func (h *GitHub) parseStatus(body []byte) (*Event, ignored, error) {
	var p github.StatusEvent
	if err := unmarshal("status", body, &p); err != nil {
		return nil, "", err
	}
	if p.GetRepo().GetFullName() == "" {
		return nil, "", fmt.Errorf("%w: status needs repository.full_name", errBadPayload)
	}
	return h.checksEvent(p.GetRepo(), &Checks{
		Event: "status", SHA: p.GetSHA(), Name: p.GetContext(), State: p.GetState(),
	})
}

// checksEvent matches the repository and checks the commit id that all three
// check events share.
func (h *GitHub) checksEvent(r *github.Repository, c *Checks) (*Event, ignored, error) {
	repo, ok := h.matchRepo(r)
	if !ok {
		return nil, "untracked repository", nil
	}
	if !isSHA(c.SHA) {
		return nil, "", fmt.Errorf("%w: %s needs a commit sha", errBadPayload, c.Event)
	}
	return &Event{Kind: KindChecks, Repository: repo.Name, FullName: r.GetFullName(), Checks: c}, "", nil
}
