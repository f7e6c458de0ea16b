package promote

import (
	"fmt"
	"strings"
	"time"
)

// Evidence is what a promotion pull request shows its reviewer: what changes,
// where it was proved, and how.
type Evidence struct {
	// From is the environment the model passed in; To the one it moves to.
	From, To string
	// Before is To's pin today; After is From's, which the PR writes into To.
	Before, After Pin
	// Commit is the commit From was verified at, which the branch starts from.
	Commit string
	// Health summarises From's health at Commit.
	Health string
	Tests  []TestOutcome
	Checks Checks
	// Diff is what merging changes in To's rendered objects; DiffError, when
	// set, says why there is no diff.
	Diff      []ObjectChange
	DiffError string
}

// TestOutcome is one test's result as a pull request shows it.
type TestOutcome struct {
	Name     string
	Passed   bool
	Duration time.Duration
	Reason   string
}

// Title is a promotion pull request's title.
func Title(model, version, to string) string {
	return fmt.Sprintf("Promote %s %s to %s", model, version, to)
}

// Branch is the branch a promotion of model into environment to is pushed to.
// One branch per (model, target environment): a newer version replaces the
// branch's commit and updates its pull request.
func Branch(model, to string) string {
	return "ferry/promote/" + model + "/" + to
}

// Body is a promotion pull request's description, in Markdown, within
// GitHub's limit: when the diffs do not fit, whole object diffs are left out
// and a note says which.
func Body(e Evidence) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Ferry promotes **%s** from **%s** to **%s**: merging this pull request is the promotion.\n\n", e.After.Model, e.From, e.To)
	fmt.Fprintf(&b, "| | %s now | after merge |\n|---|---|---|\n", cell(e.To))
	fmt.Fprintf(&b, "| version | %s | %s |\n", code(e.Before.Version), code(e.After.Version))
	fmt.Fprintf(&b, "| artifact | %s | %s |\n", code(e.Before.URI), code(e.After.URI))
	fmt.Fprintf(&b, "| digest | %s | %s |\n\n", code(e.Before.Digest), code(e.After.Digest))
	fmt.Fprintf(&b, "Proved in **%s** at commit `%s`", e.From, e.Commit)
	if e.Health != "" {
		fmt.Fprintf(&b, ": %s", e.Health)
	}
	b.WriteString(".\n\n")

	b.WriteString("### Tests in " + e.From + "\n\n")
	if len(e.Tests) == 0 {
		b.WriteString("The model declares no tests.\n\n")
	} else {
		b.WriteString("| test | outcome | duration |\n|---|---|---|\n")
		for _, t := range e.Tests {
			outcome := "passed"
			if !t.Passed {
				outcome = "failed: " + t.Reason
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(t.Name), cell(outcome), t.Duration.Round(time.Millisecond))
		}
		b.WriteString("\n")
	}

	b.WriteString("### Required checks\n\n")
	if len(e.Checks) == 0 {
		b.WriteString("The model requires no checks.\n\n")
	} else {
		b.WriteString("| check | state |\n|---|---|\n")
		for _, c := range e.Checks {
			fmt.Fprintf(&b, "| %s | %s |\n", cell(c.Name), cell(c.State))
		}
		b.WriteString("\n")
	}

	fmt.Fprintf(&b, "### What changes in %s\n\n", e.To)
	var sections, names []string
	switch {
	case e.DiffError != "":
		fmt.Fprintf(&b, "The rendered diff is not available: %s\n", cell(e.DiffError))
	case len(e.Diff) == 0:
		b.WriteString("No rendered object changes.\n")
	default:
		added, changed, removed := CountChanges(e.Diff)
		fmt.Fprintf(&b, "%d added, %d changed, %d removed.\n\n", added, changed, removed)
		for _, c := range e.Diff {
			sections = append(sections, diffSection(c))
			names = append(names, c.Ref)
		}
	}
	foot := fmt.Sprintf("\n<!-- ferry:promotion model=%s to=%s -->\n", e.After.Model, e.To)
	return fit(b.String(), sections, names, foot, MaxCommentBytes)
}
