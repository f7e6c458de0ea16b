package engine

import (
	"slices"
	"time"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
)

// Phase is where an environment's pipeline is: one of its steps while it
// runs, Idle once it has finished, Failed when a step stopped it.
type Phase string

const (
	Idle      Phase = "Idle"
	Rendering Phase = "Rendering"
	Applying  Phase = "Applying"
	// Waiting is the wait for health.
	Waiting   Phase = "Waiting"
	Testing   Phase = "Testing"
	Checking  Phase = "Checking"
	Promoting Phase = "Promoting"
	Failed    Phase = "Failed"
)

// Step is a step of the pipeline, as a failure names it.
type Step string

const (
	StepFetch   Step = "fetch"
	StepRender  Step = "render"
	StepApply   Step = "apply"
	StepHealth  Step = "health"
	StepTests   Step = "tests"
	StepChecks  Step = "checks"
	StepPromote Step = "promote"
)

// phase is the Phase an environment is in while step runs.
func (s Step) phase() Phase {
	switch s {
	case StepRender:
		return Rendering
	case StepApply:
		return Applying
	case StepHealth:
		return Waiting
	case StepTests:
		return Testing
	case StepChecks:
		return Checking
	case StepPromote:
		return Promoting
	}
	return Idle
}

// Health summarises the last wait.
const (
	HealthUnknown   = "Unknown"
	HealthHealthy   = "Healthy"
	HealthUnhealthy = "Unhealthy"
)

const historyLength = 10

// Status is one environment's state, as /api/v1/status serves it.
type Status struct {
	Repository  string `json:"repository"`
	Environment string `json:"environment"`
	// PromoteTo is the environment this one promotes into, if any.
	PromoteTo string `json:"promoteTo,omitempty"`
	// Head is the newest commit seen on the tracked branch.
	Head string `json:"head,omitempty"`
	// Revision is the commit the environment was last reconciled to.
	Revision string `json:"revision,omitempty"`
	Phase    Phase  `json:"phase"`
	// FailedStep is the step that stopped the pipeline when Phase is Failed.
	FailedStep Step `json:"failedStep,omitempty"`
	// Waiting says what a long step still waits for, and why: the objects a
	// health wait finds not Current (a Deployment 0/2 available, its pods
	// Pending on Insufficient nvidia.com/gpu).
	Waiting string `json:"waiting,omitempty"`
	Health  string `json:"health"`
	// Verified is the newest commit whose tests and required checks passed.
	Verified string `json:"verified,omitempty"`
	// Models are the environment's models at Revision.
	Models []ModelVersion `json:"models,omitempty"`
	// Summary is the ChangeSet summary of the last apply.
	Summary string `json:"summary,omitempty"`
	// LastError is the last failure, with the file, object or field at fault.
	LastError string `json:"lastError,omitempty"`
	// Tests, Checks and Promotions are the results of those steps for the
	// revision they last ran for.
	Tests         []apply.TestResult `json:"tests,omitempty"`
	Checks        promote.Checks     `json:"checks,omitempty"`
	Promotions    []Promotion        `json:"promotions,omitempty"`
	LastChange    time.Time          `json:"lastChange,omitzero"`
	LastReconcile time.Time          `json:"lastReconcile,omitzero"`
	History       []Record           `json:"history,omitempty"`
}

// ModelVersion is a model and the version an environment serves.
type ModelVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Promotion is what the promote step did for one model.
type Promotion struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	To      string `json:"to"`
	Branch  string `json:"branch,omitempty"`
	// Commit is the head of the promotion branch.
	Commit string `json:"commit,omitempty"`
	// PR is the pull request, when promotion is by pull request.
	PR     int    `json:"pr,omitempty"`
	URL    string `json:"url,omitempty"`
	Action string `json:"action"`
	// Skipped says why a model was not promoted.
	Skipped string `json:"skipped,omitempty"`
}

// Record is one reconcile, for the history.
type Record struct {
	Revision string        `json:"revision"`
	Result   string        `json:"result"`
	Step     Step          `json:"step,omitempty"`
	Summary  string        `json:"summary,omitempty"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
}

func (s *Status) record(r Record) {
	s.History = append(s.History, r)
	if len(s.History) > historyLength {
		s.History = slices.Clone(s.History[len(s.History)-historyLength:])
	}
}

func (s Status) clone() Status {
	s.History = slices.Clone(s.History)
	s.Models = slices.Clone(s.Models)
	s.Tests = slices.Clone(s.Tests)
	s.Checks = slices.Clone(s.Checks)
	s.Promotions = slices.Clone(s.Promotions)
	return s
}
