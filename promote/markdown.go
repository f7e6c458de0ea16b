package promote

import (
	"fmt"
	"html"
	"strings"
)

// MaxCommentBytes is GitHub's limit on a pull request body or comment
// (65,536 characters); counting bytes keeps ferry under it for any text.
const MaxCommentBytes = 65536

// ObjectChange is one object of an environment's rendered diff, as a pull
// request shows it.
type ObjectChange struct {
	// Ref is Kind/namespace/name.
	Ref string
	// Action is added, changed or removed.
	Action string
	// Diff is a unified diff with Secret values masked.
	Diff string
}

// Actions of an ObjectChange.
const (
	Added   = "added"
	Changed = "changed"
	Removed = "removed"
)

// CountChanges returns how many objects were added, changed and removed.
func CountChanges(changes []ObjectChange) (added, changed, removed int) {
	for _, c := range changes {
		switch c.Action {
		case Added:
			added++
		case Changed:
			changed++
		case Removed:
			removed++
		}
	}
	return added, changed, removed
}

// diffSection is one collapsible object diff.
func diffSection(c ObjectChange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary><code>%s</code> %s</summary>\n\n", html.EscapeString(c.Ref), c.Action)
	if c.Diff != "" {
		fence := fenceFor(c.Diff)
		fmt.Fprintf(&b, "%sdiff\n%s", fence, c.Diff)
		if !strings.HasSuffix(c.Diff, "\n") {
			b.WriteByte('\n')
		}
		b.WriteString(fence + "\n")
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

// fenceFor returns a code fence longer than any run of backticks in s, so the
// diff of a manifest holding Markdown cannot end the block early.
func fenceFor(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", `\|`)
	return html.EscapeString(s)
}

// code makes s an inline code span in a table cell.
func code(s string) string {
	if s == "" {
		return "–"
	}
	return "<code>" + cell(s) + "</code>"
}

// fit joins head, as many whole sections as fit, and foot, within limit
// bytes. Sections that do not fit are left out whole (never cut mid-line),
// and a note names how many, and which while their names fit.
func fit(head string, sections []string, names []string, foot string, limit int) string {
	budget := limit - len(head) - len(foot)
	var kept []string
	used := 0
	for i, s := range sections {
		note := omittedNote(names[i+1:])
		if i == len(sections)-1 {
			note = ""
		}
		if used+len(s)+len(note) > budget {
			kept = append(kept, omittedNote(names[i:]))
			break
		}
		kept = append(kept, s)
		used += len(s)
	}
	return head + strings.Join(kept, "") + foot
}

// omittedNote says which objects were left out, naming them while the note
// stays short.
func omittedNote(names []string) string {
	if len(names) == 0 {
		return ""
	}
	listed := names
	const maxNamed = 20
	if len(listed) > maxNamed {
		listed = listed[:maxNamed]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n> [!NOTE]\n> %d more object diff(s) left out to stay within GitHub's %d-character limit: ", len(names), MaxCommentBytes)
	for i, n := range listed {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("`" + strings.ReplaceAll(n, "`", "") + "`")
	}
	if len(names) > len(listed) {
		fmt.Fprintf(&b, " and %d more", len(names)-len(listed))
	}
	b.WriteString(". `ferry preview` prints the whole diff.\n")
	return b.String()
}
