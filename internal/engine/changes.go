package engine

import (
	"slices"
	"sync"
)

// Subscription follows status changes: Ready is signalled when an
// environment's status changed, and Take says which ones did since the last
// Take. Changes are coalesced, never dropped: a slow reader sees each changed
// environment once, with its newest status.
type Subscription struct {
	hub   *hub
	ready chan struct{}

	mu    sync.Mutex
	dirty map[EnvironmentKey]bool
}

// EnvironmentKey names an environment of a repository.
type EnvironmentKey struct {
	Repository, Environment string
}

// Ready is signalled (without blocking the engine) after a change.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns the environments whose status changed since the last Take,
// in a stable order.
func (s *Subscription) Take() []EnvironmentKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EnvironmentKey, 0, len(s.dirty))
	for k := range s.dirty {
		out = append(out, k)
	}
	clear(s.dirty)
	slices.SortFunc(out, func(a, b EnvironmentKey) int {
		if a.Repository != b.Repository {
			if a.Repository < b.Repository {
				return -1
			}
			return 1
		}
		if a.Environment < b.Environment {
			return -1
		}
		if a.Environment > b.Environment {
			return 1
		}
		return 0
	})
	return out
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	delete(s.hub.subs, s)
}

func (s *Subscription) mark(k EnvironmentKey) {
	s.mu.Lock()
	s.dirty[k] = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// hub fans status changes out to subscriptions.
type hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

func (h *hub) publish(k EnvironmentKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mark(k)
	}
}

// Subscribe starts following status changes; Close the subscription when done.
func (e *Engine) Subscribe() *Subscription {
	s := &Subscription{hub: &e.changes, ready: make(chan struct{}, 1), dirty: map[EnvironmentKey]bool{}}
	e.changes.mu.Lock()
	defer e.changes.mu.Unlock()
	if e.changes.subs == nil {
		e.changes.subs = map[*Subscription]struct{}{}
	}
	e.changes.subs[s] = struct{}{}
	return s
}

// StatusOf returns one environment's status.
func (e *Engine) StatusOf(k EnvironmentKey) (Status, bool) {
	rs, ok := e.repos[k.Repository]
	if !ok {
		return Status{}, false
	}
	es, ok := rs.envs[k.Environment]
	if !ok {
		return Status{}, false
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.status.clone(), true
}
