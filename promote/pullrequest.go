package promote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Labels every promotion pull request carries.
var promotionLabels = []string{"ferry", "promotion"}

// PullRequest is the pull request a promotion wants open.
type PullRequest struct {
	// Head is the promotion branch; Base the tracked branch it merges into.
	Head, Base string
	// HeadSHA is the commit ferry pushed to Head: a merged PR whose head was
	// that commit means there is nothing left to do.
	HeadSHA     string
	Title, Body string
}

// PRAction says what EnsurePullRequest did.
type PRAction string

const (
	PRCreated   PRAction = "created"
	PRUpdated   PRAction = "updated"
	PRUnchanged PRAction = "unchanged"
	// PRMerged: a PR with this content was merged already; nothing was done.
	PRMerged PRAction = "merged"
)

// PRResult is the pull request a promotion has, after EnsurePullRequest.
type PRResult struct {
	Number int      `json:"number"`
	URL    string   `json:"url"`
	Action PRAction `json:"action"`
}

// EnsurePullRequest makes sure exactly one open pull request carries
// pr.Head into pr.Base, with pr's title, body and the promotion labels.
// It looks first (by head "owner:branch", every state), so that a restart,
// a retry after GitHub answered 502 to a create it had done, or a second
// replica never opens a second PR:
//
//   - an open PR: its title, body and labels are brought up to date;
//   - a merged PR whose head was pr.HeadSHA: nothing to do (PRMerged);
//   - otherwise (none, or closed without merging, or merged with other
//     content): a new PR. GitHub's 422 "A pull request already exists" is
//     adoption, not failure: the PR is looked up again and updated.
func (g *GitHub) EnsurePullRequest(ctx context.Context, pr PullRequest) (PRResult, error) {
	g.client.writes.Lock()
	defer g.client.writes.Unlock()
	res, err := g.ensurePullRequest(ctx, pr)
	if err != nil {
		return res, fmt.Errorf("%s: pull request %s -> %s: %w", g, pr.Head, pr.Base, g.client.redact(err))
	}
	return res, nil
}

func (g *GitHub) ensurePullRequest(ctx context.Context, pr PullRequest) (PRResult, error) {
	open, merged, err := g.findPullRequests(ctx, pr.Head, pr.Base)
	if err != nil {
		return PRResult{}, err
	}
	if open == nil && merged != nil && merged.GetHead().GetSHA() == pr.HeadSHA {
		return PRResult{Number: merged.GetNumber(), URL: merged.GetHTMLURL(), Action: PRMerged}, nil
	}
	if open == nil {
		created, _, err := g.pulls.Create(ctx, g.owner, g.repo, &github.NewPullRequest{
			Title: github.String(pr.Title), Head: github.String(pr.Head), Base: github.String(pr.Base),
			Body: github.String(pr.Body), MaintainerCanModify: github.Bool(true),
		})
		switch {
		case err == nil:
			if err := g.label(ctx, created.GetNumber(), nil); err != nil {
				return PRResult{}, err
			}
			return PRResult{Number: created.GetNumber(), URL: created.GetHTMLURL(), Action: PRCreated}, nil
		case !alreadyExists(err):
			return PRResult{}, fmt.Errorf("create: %w", err)
		}
		// Someone (a replica, or ourselves before a crash) opened it meanwhile.
		if open, _, err = g.findPullRequests(ctx, pr.Head, pr.Base); err != nil {
			return PRResult{}, err
		}
		if open == nil {
			return PRResult{}, errors.New("GitHub says a pull request already exists for the branch but lists none open; retrying")
		}
	}
	return g.update(ctx, open, pr)
}

// update brings an open PR's title, body and labels to pr's.
func (g *GitHub) update(ctx context.Context, open *github.PullRequest, pr PullRequest) (PRResult, error) {
	res := PRResult{Number: open.GetNumber(), URL: open.GetHTMLURL(), Action: PRUnchanged}
	if open.GetTitle() != pr.Title || open.GetBody() != pr.Body {
		if _, _, err := g.pulls.Edit(ctx, g.owner, g.repo, open.GetNumber(), &github.PullRequest{
			Title: github.String(pr.Title), Body: github.String(pr.Body),
		}); err != nil {
			return res, fmt.Errorf("update #%d: %w", open.GetNumber(), err)
		}
		res.Action = PRUpdated
	}
	if err := g.label(ctx, open.GetNumber(), open.Labels); err != nil {
		return res, err
	}
	return res, nil
}

// label adds the promotion labels the PR does not have yet.
func (g *GitHub) label(ctx context.Context, number int, have []*github.Label) error {
	var missing []string
	for _, want := range promotionLabels {
		if !slices.ContainsFunc(have, func(l *github.Label) bool { return l.GetName() == want }) {
			missing = append(missing, want)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, _, err := g.issues.AddLabelsToIssue(ctx, g.owner, g.repo, number, missing); err != nil {
		return fmt.Errorf("label #%d: %w", number, err)
	}
	return nil
}

// findPullRequests returns the newest open PR and the newest merged PR from
// head into base. The head filter carries the owner: GitHub ignores a head
// filter without it and would list every PR.
func (g *GitHub) findPullRequests(ctx context.Context, head, base string) (open, merged *github.PullRequest, err error) {
	opts := &github.PullRequestListOptions{
		State: "all", Head: g.owner + ":" + head, Base: base,
		ListOptions: github.ListOptions{PerPage: 100},
	}
	for page := 0; page < maxPages; page++ {
		prs, resp, err := g.pulls.List(ctx, g.owner, g.repo, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("list pull requests: %w", err)
		}
		for _, pr := range prs {
			if pr.GetHead().GetRef() != head || pr.GetBase().GetRef() != base {
				continue // defence in depth, should the filter ever be ignored
			}
			switch {
			case pr.GetState() == "open" && (open == nil || pr.GetNumber() > open.GetNumber()):
				open = pr
			case pr.GetMerged() || pr.MergedAt != nil:
				if merged == nil || pr.GetNumber() > merged.GetNumber() {
					merged = pr
				}
			}
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return open, merged, nil
}

// alreadyExists recognises GitHub's 422 for a second PR from the same head.
func alreadyExists(err error) bool {
	er, ok := errors.AsType[*github.ErrorResponse](err)
	if !ok || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	if strings.Contains(er.Message, "already exists") {
		return true
	}
	for _, e := range er.Errors {
		if strings.Contains(e.Message, "already exists") {
			return true
		}
	}
	return false
}
