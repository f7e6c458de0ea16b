package webhooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Kind says what an Event asks the engine to do.
type Kind string

const (
	// KindPush asks for a fetch and reconcile of a tracked branch.
	KindPush Kind = "push"
	// KindPullRequest asks for a preview (opened, synchronize, reopened), or
	// reports a merge (Merged set).
	KindPullRequest Kind = "pull_request"
)

// Event is what the receiver hands to the engine: already authenticated,
// already matched to a tracked repository, never acted on here.
type Event struct {
	Kind Kind
	// Delivery is GitHub's X-GitHub-Delivery id.
	Delivery string
	// Repository is Ferry's name for the tracked repository; FullName is
	// GitHub's owner/name.
	Repository string
	FullName   string

	Push        *Push
	PullRequest *PullRequest
}

// Push is a push to a tracked branch. Before and After are as GitHub reported
// them: the engine resolves the head itself and never deploys After unchecked.
type Push struct {
	Ref, Branch   string
	Before, After string
	// Paths are the files the payload says changed (added, modified, removed),
	// sorted and unique. GitHub lists at most 20 commits per payload, so this
	// is a hint; the engine computes changed paths from Git.
	Paths []string
}

// PullRequest is a pull request event worth a preview, or a merge.
type PullRequest struct {
	Number  int
	Action  string
	Merged  bool
	HeadRef string
	HeadSHA string
	BaseRef string
}

// errBadPayload marks a signed body that is not what its event says it is.
var errBadPayload = errors.New("bad payload")

// ignored is a reason a well-formed event starts no work.
type ignored string

// parsePush turns a push payload into an Event, or says why it is ignored.
func (h *GitHub) parsePush(body []byte) (*Event, ignored, error) {
	var p github.PushEvent
	if err := unmarshal("push", body, &p); err != nil {
		return nil, "", err
	}
	if p.Repo == nil || p.GetRepo().GetFullName() == "" || p.GetRef() == "" {
		return nil, "", fmt.Errorf("%w: push needs repository.full_name and ref", errBadPayload)
	}
	repo, ok := h.match(p.GetRepo().GetFullName(), p.GetRepo().GetCloneURL(), p.GetRepo().GetSSHURL(), p.GetRepo().GetGitURL(), p.GetRepo().GetHTMLURL())
	if !ok {
		return nil, "untracked repository", nil
	}
	branch, isBranch := strings.CutPrefix(p.GetRef(), "refs/heads/")
	switch {
	case !isBranch:
		return nil, "not a branch push", nil
	case p.GetDeleted():
		return nil, "branch deleted", nil
	case !strings.EqualFold(branch, repo.Branch):
		return nil, "untracked branch", nil
	}
	return &Event{
		Kind:       KindPush,
		Repository: repo.Name,
		FullName:   p.GetRepo().GetFullName(),
		Push: &Push{
			Ref: p.GetRef(), Branch: branch,
			Before: p.GetBefore(), After: p.GetAfter(),
			Paths: pushPaths(&p),
		},
	}, "", nil
}

func pushPaths(p *github.PushEvent) []string {
	var paths []string
	commits := p.Commits
	if p.HeadCommit != nil {
		commits = append(commits, p.HeadCommit)
	}
	for _, c := range commits {
		paths = append(paths, c.Added...)
		paths = append(paths, c.Modified...)
		paths = append(paths, c.Removed...)
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// parsePullRequest turns a pull_request payload into an Event, or says why it
// is ignored.
func (h *GitHub) parsePullRequest(body []byte) (*Event, ignored, error) {
	var p github.PullRequestEvent
	if err := unmarshal("pull_request", body, &p); err != nil {
		return nil, "", err
	}
	if p.Repo == nil || p.GetRepo().GetFullName() == "" || p.PullRequest == nil || p.GetAction() == "" {
		return nil, "", fmt.Errorf("%w: pull_request needs action, repository.full_name and pull_request", errBadPayload)
	}
	repo, ok := h.match(p.GetRepo().GetFullName(), p.GetRepo().GetCloneURL(), p.GetRepo().GetSSHURL(), p.GetRepo().GetGitURL(), p.GetRepo().GetHTMLURL())
	if !ok {
		return nil, "untracked repository", nil
	}
	pr := p.GetPullRequest()
	ev := &Event{
		Kind:       KindPullRequest,
		Repository: repo.Name,
		FullName:   p.GetRepo().GetFullName(),
		PullRequest: &PullRequest{
			Number:  p.GetNumber(),
			Action:  p.GetAction(),
			HeadRef: pr.GetHead().GetRef(),
			HeadSHA: pr.GetHead().GetSHA(),
			BaseRef: pr.GetBase().GetRef(),
		},
	}
	if ev.PullRequest.Number == 0 {
		ev.PullRequest.Number = pr.GetNumber()
	}
	switch p.GetAction() {
	case "opened", "synchronize", "reopened":
		return ev, "", nil
	case "closed":
		if pr.GetMerged() {
			ev.PullRequest.Merged = true
			return ev, "", nil
		}
		return nil, "pull request closed without merging", nil
	default:
		return nil, ignored("pull request action " + p.GetAction()), nil
	}
}

// unmarshal decodes a payload into go-github's type for its event.
func unmarshal(event string, body []byte, into any) error {
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("%w: %s is not valid JSON of its kind", errBadPayload, event)
	}
	return nil
}
