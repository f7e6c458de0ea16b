package engine

import (
	"slices"
	"time"
)

// Phase is where an environment's pipeline is.
type Phase string

const (
	Idle      Phase = "Idle"
	Fetching  Phase = "Fetching"
	Rendering Phase = "Rendering"
	Applying  Phase = "Applying"
	Waiting   Phase = "Waiting"
	Verifying Phase = "Verifying"
	Failed    Phase = "Failed"
)

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
	// Head is the newest commit seen on the tracked branch.
	Head string `json:"head,omitempty"`
	// Revision is the commit the environment was last reconciled to.
	Revision string `json:"revision,omitempty"`
	Phase    Phase  `json:"phase"`
	Health   string `json:"health"`
	// Summary is the ChangeSet summary of the last apply.
	Summary string `json:"summary,omitempty"`
	// LastError is the last failure, with the file, object or field at fault.
	LastError     string    `json:"lastError,omitempty"`
	LastChange    time.Time `json:"lastChange,omitzero"`
	LastReconcile time.Time `json:"lastReconcile,omitzero"`
	History       []Record  `json:"history,omitempty"`
}

// Record is one reconcile, for the history.
type Record struct {
	Revision string        `json:"revision"`
	Result   string        `json:"result"`
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
	return s
}
