package promote

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
)

// Commit status states, as GitHub names them.
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	StateError   = "error"
)

// maxDescription is GitHub's limit on a commit status description.
const maxDescription = 140

// CommitStatus is one commit status ferry reports, e.g. ferry/dev.
type CommitStatus struct {
	SHA     string
	Context string
	// State is pending, success, failure (the commit is at fault: a test or
	// a check failed, the render was refused) or error (ferry could not
	// finish: a transient failure).
	State string
	// Description is one line; it is cut to GitHub's 140 characters.
	Description string
	TargetURL   string
}

// SetStatus posts a commit status.
func (g *GitHub) SetStatus(ctx context.Context, s CommitStatus) error {
	g.client.writes.Lock()
	defer g.client.writes.Unlock()
	status := &github.RepoStatus{
		State:       github.String(s.State),
		Context:     github.String(s.Context),
		Description: github.String(Describe(s.Description)),
	}
	if s.TargetURL != "" {
		status.TargetURL = github.String(s.TargetURL)
	}
	if _, _, err := g.repos.CreateStatus(ctx, g.owner, g.repo, s.SHA, status); err != nil {
		return fmt.Errorf("%s: commit status %s on %s: %w", g, s.Context, s.SHA, g.client.redact(err))
	}
	return nil
}

// Describe makes a commit status description of s: its first line, cut to
// GitHub's 140 characters with an ellipsis.
func Describe(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if utf8.RuneCountInString(s) <= maxDescription {
		return s
	}
	runes := []rune(s)
	return string(runes[:maxDescription-1]) + "…"
}
