package promote

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Check states, as ferry reports them.
const (
	CheckSuccess = "success"
	CheckPending = "pending"
	CheckFailure = "failure"
	// CheckMissing: no check run or status of that name on the commit yet.
	CheckMissing = "missing"
)

// Check is one required check on a commit.
type Check struct {
	Name string `json:"name"`
	// State is success, pending, failure or missing.
	State string `json:"state"`
	// Conclusion is GitHub's word for it (failure, timed_out, in_progress …).
	Conclusion string `json:"conclusion,omitempty"`
	URL        string `json:"url,omitempty"`
}

func (c Check) String() string {
	if c.Conclusion == "" || c.Conclusion == c.State {
		return c.Name + ": " + c.State
	}
	return c.Name + ": " + c.State + " (" + c.Conclusion + ")"
}

// Checks are the required checks of a commit, in the order asked for.
type Checks []Check

// Failed returns the checks that failed.
func (cs Checks) Failed() Checks { return cs.with(CheckFailure) }

// Waiting returns the checks that are pending or not reported yet.
func (cs Checks) Waiting() Checks { return append(cs.with(CheckPending), cs.with(CheckMissing)...) }

func (cs Checks) with(state string) Checks {
	var out Checks
	for _, c := range cs {
		if c.State == state {
			out = append(out, c)
		}
	}
	return out
}

// Names lists the checks as "name: state", for statuses and logs.
func (cs Checks) Names() string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// RequiredChecks reads the named checks of commit sha from both of GitHub's
// mechanisms: check runs (GitHub Actions and Apps) and commit statuses
// (external CI). As branch protection does, a check run concluded neutral or
// skipped counts as success; a name reported by neither is missing. When
// both report a name, a failure of either wins, then pending.
func (g *GitHub) RequiredChecks(ctx context.Context, sha string, names []string) (Checks, error) {
	if len(names) == 0 {
		return nil, nil
	}
	found := map[string]Check{}
	merge := func(c Check) {
		prev, seen := found[c.Name]
		if !seen || rank(c.State) > rank(prev.State) {
			found[c.Name] = c
		}
	}
	if err := g.checkRuns(ctx, sha, merge); err != nil {
		return nil, fmt.Errorf("%s: checks of %s: %w", g, sha, g.client.redact(err))
	}
	if err := g.statuses(ctx, sha, merge); err != nil {
		return nil, fmt.Errorf("%s: statuses of %s: %w", g, sha, g.client.redact(err))
	}
	out := make(Checks, len(names))
	for i, name := range names {
		c, ok := found[name]
		if !ok {
			c = Check{Name: name, State: CheckMissing}
		}
		out[i] = c
	}
	return out, nil
}

// rank orders states so that the worse one of two reports wins.
func rank(state string) int {
	switch state {
	case CheckFailure:
		return 3
	case CheckPending:
		return 2
	case CheckSuccess:
		return 1
	}
	return 0
}

func (g *GitHub) checkRuns(ctx context.Context, sha string, merge func(Check)) error {
	opts := &github.ListCheckRunsOptions{Filter: github.String("latest"), ListOptions: github.ListOptions{PerPage: 100}}
	for page := 0; page < maxPages; page++ {
		res, resp, err := g.checks.ListCheckRunsForRef(ctx, g.owner, g.repo, sha, opts)
		if err != nil {
			return err
		}
		for _, run := range res.CheckRuns {
			c := Check{Name: run.GetName(), URL: run.GetHTMLURL(), Conclusion: run.GetConclusion()}
			switch {
			case run.GetStatus() != "completed":
				c.State, c.Conclusion = CheckPending, run.GetStatus()
			case run.GetConclusion() == "success" || run.GetConclusion() == "neutral" || run.GetConclusion() == "skipped":
				c.State = CheckSuccess
			default:
				c.State = CheckFailure
			}
			merge(c)
		}
		if resp == nil || resp.NextPage == 0 {
			return nil
		}
		opts.Page = resp.NextPage
	}
	return nil
}

func (g *GitHub) statuses(ctx context.Context, sha string, merge func(Check)) error {
	opts := &github.ListOptions{PerPage: 100}
	for page := 0; page < maxPages; page++ {
		combined, resp, err := g.repos.GetCombinedStatus(ctx, g.owner, g.repo, sha, opts)
		if err != nil {
			return err
		}
		for _, s := range combined.Statuses {
			c := Check{Name: s.GetContext(), URL: s.GetTargetURL(), Conclusion: s.GetState()}
			switch s.GetState() {
			case "success":
				c.State = CheckSuccess
			case "pending":
				c.State = CheckPending
			default:
				c.State = CheckFailure
			}
			merge(c)
		}
		if resp == nil || resp.NextPage == 0 {
			return nil
		}
		opts.Page = resp.NextPage
	}
	return nil
}
