package promote

import (
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/ferry-gitops/ferry/internal/object"
)

// maxErrorBytes bounds one error shown in a preview; longer ones are cut at
// a line boundary.
const maxErrorBytes = 4096

// maxTableBytes bounds the summary table, so that however many environments
// there are, the comment keeps room for the errors and diffs.
const maxTableBytes = MaxCommentBytes / 4

// PreviewBody is the preview report in Markdown: it starts with
// PreviewMarker, then a summary table (environment · models before → after ·
// objects +/~/− · status), the changed tests, then the errors of each
// environment and a collapsible unified diff per changed object (and per
// object the live cluster would see change, with preview.clusterDiff).
//
// With limit > 0 the report is at most limit bytes: errors and diffs that do
// not fit are left out whole, never cut mid-line, the table is kept, and a
// note says what was left out. The pull request comment passes
// MaxCommentBytes; ferry preview passes 0 and prints everything.
func PreviewBody(p Preview, limit int) string {
	maxError := maxErrorBytes
	if limit <= 0 {
		limit, maxError = math.MaxInt, math.MaxInt
	}
	var b strings.Builder
	b.WriteString(PreviewMarker + "\n")
	b.WriteString("### Ferry preview\n\n")
	b.WriteString(previewSummary(p))
	b.WriteString(previewTable(p.Environments))
	b.WriteString(previewNotes(p.Environments))

	var sections, names []string
	for _, e := range p.Environments {
		if e.RenderError != "" {
			sections = append(sections, errorSection(e.Name+": the head does not render", e.RenderError, maxError))
			names = append(names, e.Name+": render error")
		}
		if len(e.Policy) > 0 {
			sections = append(sections, errorSection(fmt.Sprintf("%s: the policy refuses %d object(s)", e.Name, len(e.Policy)), strings.Join(e.Policy, "\n"), maxError))
			names = append(names, e.Name+": policy")
		}
		if e.Cluster != nil && e.Cluster.Error != "" {
			sections = append(sections, errorSection(e.Name+": the live cluster's dry run fails", e.Cluster.Error, maxError))
			names = append(names, e.Name+": cluster dry run")
		}
	}
	for _, e := range p.Environments {
		heading := fmt.Sprintf("\n#### %s: rendered changes\n\n", e.Name)
		for _, c := range e.Objects {
			sections = append(sections, heading+diffSection(c))
			names = append(names, e.Name+": "+c.Ref)
			heading = ""
		}
		if e.Cluster == nil {
			continue
		}
		heading = fmt.Sprintf("\n#### %s: against the live cluster (server-side dry run)\n\n", e.Name)
		for _, c := range e.Cluster.Objects {
			sections = append(sections, heading+diffSection(c))
			names = append(names, e.Name+" (cluster): "+c.Ref)
			heading = ""
		}
	}
	foot := fmt.Sprintf("\n<sub>ferry previewed `%s` against the merge base `%s`.</sub>\n", object.ShortSHA(p.Head), object.ShortSHA(p.MergeBase))
	return fit(b.String(), sections, names, foot, limit)
}

// previewSummary is the sentence above the table.
func previewSummary(p Preview) string {
	what := "Merging this pull request"
	if p.Number == 0 {
		what = fmt.Sprintf("Merging `%s` into `%s`", strings.ReplaceAll(p.HeadRef, "`", ""), strings.ReplaceAll(p.BaseRef, "`", ""))
	}
	var changed, failed []string
	for _, e := range p.Environments {
		switch {
		case e.Failed():
			failed = append(failed, e.Name)
		case e.Changed():
			changed = append(changed, e.Name)
		}
	}
	var s string
	switch {
	case len(changed) == 0:
		s = fmt.Sprintf("%s changes none of the %d environment(s)", what, len(p.Environments))
	default:
		s = fmt.Sprintf("%s changes %d of %d environment(s): %s", what, len(changed), len(p.Environments), strings.Join(changed, ", "))
	}
	if len(failed) > 0 {
		s += fmt.Sprintf("; **%s** would not deploy", strings.Join(failed, ", "))
	}
	return html.EscapeString(s) + ".\n\n"
}

// previewTable is the summary table, cut at a row when it would pass
// maxTableBytes.
func previewTable(envs []EnvironmentPreview) string {
	var b strings.Builder
	b.WriteString("| environment | models | objects +/~/− | status |\n|---|---|---|---|\n")
	for i, e := range envs {
		row := fmt.Sprintf("| %s | %s | %s | %s |\n", cell(e.Name), modelsCell(e.Models), objectsCell(e), statusCell(e))
		if b.Len()+len(row) > maxTableBytes {
			fmt.Fprintf(&b, "\n%d more environment(s) left out of the table.\n", len(envs)-i)
			break
		}
		b.WriteString(row)
	}
	b.WriteString("\n")
	return b.String()
}

func modelsCell(models []ModelChange) string {
	if len(models) == 0 {
		return "–"
	}
	parts := make([]string, len(models))
	for i, m := range models {
		switch {
		case m.Before == m.After:
			parts[i] = fmt.Sprintf("%s %s", cell(m.Name), code(m.After))
		case m.Before == "":
			parts[i] = fmt.Sprintf("%s %s (new)", cell(m.Name), code(m.After))
		case m.After == "":
			parts[i] = fmt.Sprintf("%s %s (removed)", cell(m.Name), code(m.Before))
		default:
			parts[i] = fmt.Sprintf("%s %s → **%s**", cell(m.Name), code(m.Before), code(m.After))
		}
	}
	return strings.Join(parts, "<br>")
}

func objectsCell(e EnvironmentPreview) string {
	if e.Unchanged || e.RenderError != "" {
		return "–"
	}
	added, changed, removed := CountChanges(e.Objects)
	return fmt.Sprintf("+%d ~%d −%d", added, changed, removed)
}

func statusCell(e EnvironmentPreview) string {
	switch {
	case e.RenderError != "":
		return "❌ does not render: " + cell(e.reason())
	case len(e.Policy) > 0:
		return fmt.Sprintf("❌ policy refuses %d object(s): %s", len(e.Policy), cell(e.reason()))
	case e.Unchanged:
		return "unchanged: no input touched"
	case e.Changed():
		return "✅ changes"
	}
	return "✅ no change"
}

// previewNotes lists, per environment, what the table has no room for: test
// changes, a merge base that did not render, cluster diff counts.
func previewNotes(envs []EnvironmentPreview) string {
	var b strings.Builder
	for _, e := range envs {
		var notes []string
		if len(e.Tests) > 0 {
			tests := make([]string, len(e.Tests))
			for i, t := range e.Tests {
				tests[i] = fmt.Sprintf("%s %s", code(t.Model+"/"+t.Name), t.Action)
			}
			notes = append(notes, "tests: "+strings.Join(tests, ", "))
		}
		if e.BaseError != "" {
			notes = append(notes, "the merge base does not render ("+cell(Describe(e.BaseError))+"): every object shows as added")
		}
		if c := e.Cluster; c != nil && c.Skipped != "" {
			notes = append(notes, "live cluster: not dry-run: "+cell(c.Skipped))
		} else if c != nil {
			added, changed, removed := clusterCounts(c.Objects)
			notes = append(notes, fmt.Sprintf("live cluster: %d to create, %d to configure, %d to delete", added, changed, removed))
		}
		if len(notes) == 0 {
			continue
		}
		line := fmt.Sprintf("- **%s**: %s\n", cell(e.Name), strings.Join(notes, "; "))
		if b.Len()+len(line) > maxTableBytes {
			b.WriteString("- notes of further environments left out: `ferry preview` prints them\n")
			break
		}
		b.WriteString(line)
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// Actions of a cluster ObjectChange, as apply names them.
const (
	clusterCreated    = "created"
	clusterConfigured = "configured"
	clusterDeleted    = "deleted"
)

func clusterCounts(objs []ObjectChange) (created, configured, deleted int) {
	for _, o := range objs {
		switch o.Action {
		case clusterCreated:
			created++
		case clusterConfigured:
			configured++
		case clusterDeleted:
			deleted++
		}
	}
	return created, configured, deleted
}

// errorSection is one collapsible error, cut to max bytes at a line.
func errorSection(title, msg string, max int) string {
	if len(msg) > max {
		cut := strings.LastIndexByte(msg[:max], '\n')
		if cut <= 0 {
			cut = max
		}
		msg = strings.ToValidUTF8(msg[:cut], "") + "\n… (cut; ferry preview prints it whole)"
	}
	fence := fenceFor(msg)
	return fmt.Sprintf("<details open><summary>%s</summary>\n\n%stext\n%s\n%s\n\n</details>\n", html.EscapeString(title), fence, msg, fence)
}
