package promote

import (
	"slices"
	"strings"
	"sync"
)

// keptTokens is how many rotating tokens a secrets set remembers: installation
// tokens live an hour, so the last few cover every one still in use.
const keptTokens = 8

// secrets is the set of credentials an error must be cleaned of before it
// leaves the package: a static token, kept for good, and the last tokens a
// token source handed out. It is safe for concurrent use; the zero value and
// nil are empty sets.
type secrets struct {
	mu     sync.Mutex
	fixed  []string
	recent []string // oldest first, at most keptTokens
}

// newSecrets returns a set holding the non-empty values for good.
func newSecrets(fixed ...string) *secrets {
	s := &secrets{}
	for _, v := range fixed {
		if v != "" {
			s.fixed = append(s.fixed, v)
		}
	}
	return s
}

// add remembers a token handed out.
func (s *secrets) add(v string) {
	if s == nil || v == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.recent, v) || slices.Contains(s.fixed, v) {
		return
	}
	s.recent = append(s.recent, v)
	if len(s.recent) > keptTokens {
		s.recent = slices.Delete(s.recent, 0, len(s.recent)-keptTokens)
	}
}

// redact returns err with every secret replaced by "[redacted]", or err
// itself when it holds none.
func (s *secrets) redact(err error) error {
	if err == nil || s == nil {
		return err
	}
	s.mu.Lock()
	all := slices.Concat(s.fixed, s.recent)
	s.mu.Unlock()
	msg := err.Error()
	clean := msg
	for _, v := range all {
		clean = strings.ReplaceAll(clean, v, "[redacted]")
	}
	if clean == msg {
		return err
	}
	return &redacted{msg: clean, cause: err}
}

type redacted struct {
	msg   string
	cause error
}

func (e *redacted) Error() string { return e.msg }

// Unwrap lets callers classify the cause (IsTransient) without printing it.
func (e *redacted) Unwrap() error { return e.cause }
