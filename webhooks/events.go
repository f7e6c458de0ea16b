package webhooks

import (
	"encoding/hex"
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
	// KindPullRequest asks for a preview (opened, synchronize, reopened,
	// ready_for_review), or reports a closed pull request (Action "closed",
	// Merged says whether it was merged): a closed one cancels a pending
	// preview.
	KindPullRequest Kind = "pull_request"
	// KindChecks says a check on a commit changed (a check run, a check suite
	// or a commit status): the engine re-reads the required checks of that
	// commit.
	KindChecks Kind = "checks"
)

// Event is what the receiver hands to the engine: already authenticated,
// already matched to a tracked repository, never acted on here. Exactly one
// of Push, PullRequest and Checks is set, the one its Kind names.
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
	Checks      *Checks
}

// Push is a push to a tracked branch. Before and After are as GitHub reported
// them: the engine resolves the head itself and never deploys After unchecked.
type Push struct {
	Ref, Branch   string
	Before, After string
	// Paths are the files the payload says changed (added, modified, removed),
	// sorted and unique. They are a hint (after a force push or on a new
	// branch the payload's commits are not all that changed against the
	// deployed revision), so the engine computes changed paths from Git.
	Paths []string
}

// PullRequest is a pull request event worth a preview, or a closed one.
type PullRequest struct {
	Number int
	// Action is GitHub's: opened, synchronize, reopened, ready_for_review or closed.
	Action string
	// Merged is set when Action is closed and the pull request was merged.
	Merged bool
	// Draft is set while the pull request is a draft.
	Draft   bool
	HeadRef string
	HeadSHA string
	BaseRef string
	BaseSHA string
	// HeadRepoFullName is the owner/name the head branch lives in; empty when
	// that repository was deleted (GitHub then sends head.repo as null).
	HeadRepoFullName string
	// Fork is set when the head is not in the base repository (a fork, or a
	// deleted one). A fork's head is untrusted: fetch refs/pull/N/head from
	// the base repository, read-only, and never with write credentials.
	Fork bool
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
	repo, ok := h.matchRepo(p.GetRepo())
	if !ok {
		return nil, "untracked repository", nil
	}
	switch p.GetAction() {
	case "opened", "synchronize", "reopened", "ready_for_review", "closed":
	default:
		return nil, ignored("pull request action " + p.GetAction()), nil
	}
	pr := p.GetPullRequest()
	if !isSHA(pr.GetHead().GetSHA()) {
		return nil, "", fmt.Errorf("%w: pull_request needs pull_request.head.sha", errBadPayload)
	}
	headRepo := pr.GetHead().GetRepo().GetFullName()
	number := p.GetNumber()
	if number == 0 {
		number = pr.GetNumber()
	}
	return &Event{
		Kind:       KindPullRequest,
		Repository: repo.Name,
		FullName:   p.GetRepo().GetFullName(),
		PullRequest: &PullRequest{
			Number:           number,
			Action:           p.GetAction(),
			Merged:           p.GetAction() == "closed" && pr.GetMerged(),
			Draft:            pr.GetDraft(),
			HeadRef:          pr.GetHead().GetRef(),
			HeadSHA:          pr.GetHead().GetSHA(),
			BaseRef:          pr.GetBase().GetRef(),
			BaseSHA:          pr.GetBase().GetSHA(),
			HeadRepoFullName: headRepo,
			Fork:             !strings.EqualFold(headRepo, p.GetRepo().GetFullName()),
		},
	}, "", nil
}

// matchRepo finds the tracked repository a payload's repository object names.
func (h *GitHub) matchRepo(r *github.Repository) (Repository, bool) {
	return h.match(r.GetFullName(), r.GetCloneURL(), r.GetSSHURL(), r.GetGitURL(), r.GetHTMLURL())
}

// isSHA reports whether s is a full commit id: 40 hex digits (SHA-1) or 64
// (SHA-256 repositories). It keeps anything else from reaching a refspec or
// an API path in the engine.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// unmarshal decodes a payload into go-github's type for its event.
func unmarshal(event string, body []byte, into any) error {
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("%w: %s is not valid JSON of its kind", errBadPayload, event)
	}
	return nil
}
