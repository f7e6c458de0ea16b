package dashboard

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
)

// fakeStatuses feeds statuses directly, and coalesces changes for its
// subscribers as the engine does: at most one mark per environment, never
// dropped.
type fakeStatuses struct {
	mu       sync.Mutex
	statuses []engine.Status
	subs     map[*fakeChanges]bool
}

func newFake(statuses ...engine.Status) *fakeStatuses {
	return &fakeStatuses{statuses: statuses, subs: map[*fakeChanges]bool{}}
}

func keyOf(s engine.Status) engine.EnvironmentKey {
	return engine.EnvironmentKey{Repository: s.Repository, Environment: s.Environment}
}

func (f *fakeStatuses) Status() []engine.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.statuses)
}

func (f *fakeStatuses) StatusOf(k engine.EnvironmentKey) (engine.Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.statuses {
		if keyOf(s) == k {
			return s, true
		}
	}
	return engine.Status{}, false
}

func (f *fakeStatuses) Subscribe() Changes {
	c := &fakeChanges{f: f, ready: make(chan struct{}, 1), dirty: map[engine.EnvironmentKey]bool{}}
	f.mu.Lock()
	f.subs[c] = true
	f.mu.Unlock()
	return c
}

// set replaces the status of s's environment and tells subscribers.
func (f *fakeStatuses) set(s engine.Status) {
	f.mu.Lock()
	i := slices.IndexFunc(f.statuses, func(x engine.Status) bool { return keyOf(x) == keyOf(s) })
	if i < 0 {
		f.mu.Unlock()
		panic("no environment " + s.Repository + "/" + s.Environment)
	}
	f.statuses[i] = s
	subs := make([]*fakeChanges, 0, len(f.subs))
	for c := range f.subs {
		subs = append(subs, c)
	}
	f.mu.Unlock()
	for _, c := range subs {
		c.mark(keyOf(s))
	}
}

// updateAll changes every environment of keys with fn at once: subscribers
// see them in one Take.
func (f *fakeStatuses) updateAll(fn func(*engine.Status), keys ...engine.EnvironmentKey) {
	f.mu.Lock()
	for i, s := range f.statuses {
		if slices.Contains(keys, keyOf(s)) {
			s.Models = slices.Clone(s.Models)
			fn(&s)
			f.statuses[i] = s
		}
	}
	subs := make([]*fakeChanges, 0, len(f.subs))
	for c := range f.subs {
		subs = append(subs, c)
	}
	f.mu.Unlock()
	for _, c := range subs {
		c.mark(keys...)
	}
}

// update changes one environment with fn.
func (f *fakeStatuses) update(repo, env string, fn func(*engine.Status)) {
	s, ok := f.StatusOf(engine.EnvironmentKey{Repository: repo, Environment: env})
	if !ok {
		panic("no environment " + repo + "/" + env)
	}
	s.Models = slices.Clone(s.Models)
	s.History = slices.Clone(s.History)
	fn(&s)
	f.set(s)
}

func (f *fakeStatuses) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

type fakeChanges struct {
	f     *fakeStatuses
	ready chan struct{}
	mu    sync.Mutex
	dirty map[engine.EnvironmentKey]bool
}

func (c *fakeChanges) Ready() <-chan struct{} { return c.ready }

func (c *fakeChanges) Take() []engine.EnvironmentKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]engine.EnvironmentKey, 0, len(c.dirty))
	for k := range c.dirty {
		out = append(out, k)
	}
	clear(c.dirty)
	slices.SortFunc(out, func(a, b engine.EnvironmentKey) int {
		return strings.Compare(a.Repository+"\x00"+a.Environment, b.Repository+"\x00"+b.Environment)
	})
	return out
}

func (c *fakeChanges) Close() {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	delete(c.f.subs, c)
}

func (c *fakeChanges) mark(keys ...engine.EnvironmentKey) {
	c.mu.Lock()
	for _, k := range keys {
		c.dirty[k] = true
	}
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

var epoch = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

// healthy is an environment serving models (name=version) at a revision.
func healthy(repo, env, promoteTo string, models ...string) engine.Status {
	s := engine.Status{
		Repository: repo, Environment: env, PromoteTo: promoteTo,
		Head: "0123456789abcdef0123", Revision: "0123456789abcdef0123",
		Phase: engine.Idle, Health: engine.HealthHealthy,
		Summary: "1 created, 2 unchanged", LastChange: epoch.Add(-3 * time.Minute), LastReconcile: epoch.Add(-time.Minute),
	}
	for _, m := range models {
		name, version, _ := strings.Cut(m, "=")
		s.Models = append(s.Models, engine.ModelVersion{Name: name, Version: version})
	}
	for i := range 3 {
		s.History = append(s.History, engine.Record{
			Revision: fmt.Sprintf("%040d", i), Result: "success", Step: engine.StepPromote,
			Summary: "1 created, 2 unchanged", Started: epoch.Add(-time.Duration(10-i) * time.Minute), Duration: 420 * time.Millisecond,
		})
	}
	return s
}

// fleet is n repositories of dev → staging → prod, one model each.
func fleet(n int) []engine.Status {
	var out []engine.Status
	for i := range n {
		repo := fmt.Sprintf("models-%03d", i)
		out = append(out,
			healthy(repo, "dev", "staging", "fraud-detector=1.1.0"),
			healthy(repo, "staging", "prod", "fraud-detector=1.0.0"),
			healthy(repo, "prod", "", "fraud-detector=1.0.0"))
	}
	return out
}

func newDashboard(t testing.TB, f *fakeStatuses, opts Options) *Dashboard {
	t.Helper()
	opts.Statuses = f
	if opts.Now == nil {
		opts.Now = func() time.Time { return epoch }
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// event is one Server-Sent Event.
type event struct{ Name, ID, Data string }

// readEvent reads the next event with data from r; comments and retry
// fields are skipped. It returns io.EOF when the stream ends.
func readEvent(r *bufio.Reader) (event, error) {
	var ev event
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				return ev, nil
			}
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
}

// events reads r's events into a channel, closed when r ends.
func events(r io.Reader) <-chan event {
	ch := make(chan event, 1024)
	go func() {
		defer close(ch)
		br := bufio.NewReader(r)
		for {
			ev, err := readEvent(br)
			if err != nil {
				return
			}
			ch <- ev
		}
	}()
	return ch
}

// next returns the next event, failing t if none comes within a few seconds.
func next(t *testing.T, ch <-chan event) event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended before the event came")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return event{}
}

// quiet fails t if an event comes within d.
func quiet(t *testing.T, ch <-chan event, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected %s event: %.300s", ev.Name, ev.Data)
		}
	case <-time.After(d):
	}
}
