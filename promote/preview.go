package promote

import (
	"fmt"
	"strings"
)

// PreviewContext is the commit status a preview posts on a pull request's
// head; a repository can make it a required check.
const PreviewContext = "ferry/preview"

// PreviewMarker starts ferry's preview comment on a pull request, so that
// each push edits that comment (UpsertComment) rather than adding one.
const PreviewMarker = "<!-- ferry:preview -->"

// Preview is what merging a pull request (or one ref into another) would
// change, environment by environment, in the order ferry.yaml lists them.
type Preview struct {
	// Repository is ferry's name for the repository.
	Repository string
	// Number is the pull request; 0 for a preview of two refs.
	Number int
	// Head is the commit previewed; Base the tip of the branch it merges
	// into; MergeBase their common ancestor, which Head is compared with.
	Head, Base, MergeBase string
	// HeadRef and BaseRef name them as given ("refs/pull/7/head", "main").
	HeadRef, BaseRef string
	Environments     []EnvironmentPreview
}

// EnvironmentPreview is one environment of a Preview.
type EnvironmentPreview struct {
	Name string
	// Path is the environment's directory in the repository.
	Path string
	// Unchanged is set when the change touches none of the files the
	// environment's render read at the merge base: it was not rendered at
	// the head, and Models are the merge base's.
	Unchanged bool
	// Models are the environment's models, before (merge base) and after (head).
	Models []ModelChange
	// Objects are the rendered objects added, changed and removed, with
	// Secret values masked.
	Objects []ObjectChange
	// Tests are the Models' tests added, changed and removed.
	Tests []TestChange
	// RenderError says why the head does not render, naming the file;
	// BaseError why the merge base does not (then Objects are all added).
	RenderError, BaseError string
	// Policy are the environment's apply policy's refusals of the head's
	// objects, each naming the object and what to change in ferry.yaml.
	Policy []string
	// Cluster is the server-side dry run of the head against the live
	// cluster, when the environment asks for one (preview.clusterDiff).
	Cluster *ClusterPreview
}

// ModelChange is one model's version before and after; "" where it is absent.
type ModelChange struct {
	Name, Before, After string
}

// TestChange is one Model test that is added, changed or removed.
type TestChange struct {
	Model, Name string
	// Action is added, changed or removed.
	Action string
}

// ClusterPreview is what applying the head would do to the live cluster.
type ClusterPreview struct {
	// Objects are those the apply would create, configure or delete, with a
	// unified diff of live against dry-run, Secret values masked.
	Objects []ObjectChange
	// Error is what the dry run could not do: an admission rejection, a
	// policy refusal against live objects, an unreachable cluster.
	Error string
	// Skipped, when set, says why the dry run was not made.
	Skipped string
}

// Failed reports whether the environment keeps the preview from passing:
// its head does not render, or its policy refuses an object.
func (e EnvironmentPreview) Failed() bool { return e.RenderError != "" || len(e.Policy) > 0 }

// Changed reports whether merging changes the environment's rendered
// objects, models or tests.
func (e EnvironmentPreview) Changed() bool {
	if len(e.Objects) > 0 || len(e.Tests) > 0 {
		return true
	}
	for _, m := range e.Models {
		if m.Before != m.After {
			return true
		}
	}
	return false
}

// reason is why a failed environment failed, on one line, naming the file
// (a render error) or the object (a policy refusal).
func (e EnvironmentPreview) reason() string {
	switch {
	case e.RenderError != "":
		return Describe(e.RenderError)
	case len(e.Policy) > 0:
		return Describe(e.Policy[0])
	}
	return ""
}

// PreviewStatus is the ferry/preview commit status of p on its head:
// success when every environment renders and passes its policy, failure
// naming the first environment that does not and its file or object.
func PreviewStatus(p Preview) CommitStatus {
	s := CommitStatus{SHA: p.Head, Context: PreviewContext, State: StateSuccess}
	var changed []string
	for _, e := range p.Environments {
		if e.Failed() {
			s.State = StateFailure
			s.Description = e.Name + ": " + e.reason()
			return s
		}
		if e.Changed() {
			changed = append(changed, e.Name)
		}
	}
	s.Description = fmt.Sprintf("%d environment(s) render and pass policy; ", len(p.Environments))
	if len(changed) == 0 {
		s.Description += "none changes"
	} else {
		s.Description += "changes " + strings.Join(changed, ", ")
	}
	s.Description = Describe(s.Description)
	return s
}
