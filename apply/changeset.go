package apply

import (
	"fmt"
	"strings"
)

// Action is what an apply did to one object.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	Skipped    Action = "skipped"
	Failed     Action = "failed"
)

// Change is one object's outcome, with the reason when there is one
// ("drift", "recreated: immutable field", "prune disabled", the error).
type Change struct {
	Ref    Ref
	Action Action
	Reason string
}

func (c Change) String() string {
	if c.Reason == "" {
		return fmt.Sprintf("%s %s", c.Ref, c.Action)
	}
	return fmt.Sprintf("%s %s (%s)", c.Ref, c.Action, c.Reason)
}

// ChangeSet is what an apply did, object by object: the rendered objects in
// their apply order, then what was pruned.
type ChangeSet struct {
	Changes []Change
	// Health is every rendered object's readiness as the apply's LIST found
	// it, set only when the apply changed nothing (every object Unchanged,
	// nothing pruned or skipped): it is then their readiness now, and a
	// caller whose report is all Current need not Wait (an idle drift check
	// costs its LISTs and nothing more).
	Health *HealthReport
}

// Count returns how many objects got action a.
func (cs *ChangeSet) Count(a Action) int {
	n := 0
	for _, c := range cs.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Changed reports whether anything was created, configured or deleted.
func (cs *ChangeSet) Changed() bool {
	return cs.Count(Created)+cs.Count(Configured)+cs.Count(Deleted) > 0
}

// Summary is one line for logs and statuses: "2 created, 1 configured, 17 unchanged".
func (cs *ChangeSet) Summary() string {
	counts := map[Action]int{}
	for _, c := range cs.Changes {
		counts[c.Action]++
	}
	var parts []string
	for _, a := range []Action{Created, Configured, Deleted, Unchanged, Skipped, Failed} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	if len(parts) == 0 {
		return "nothing to apply"
	}
	return strings.Join(parts, ", ")
}

// Find returns the change for ref, if any.
func (cs *ChangeSet) Find(ref Ref) (Change, bool) {
	for _, c := range cs.Changes {
		if c.Ref.key() == ref.key() {
			return c, true
		}
	}
	return Change{}, false
}
