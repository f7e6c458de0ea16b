package faulttest

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// Gate stops a client in the middle of its work at a point the test names:
// it lets requests through until a set number of those matching a rule have
// gone, then holds every request, matching or not, until Open. The test
// then breaks something (stops the API server, kills the process) while the
// client is stuck exactly there.
type Gate struct {
	after int
	match func(*http.Request) bool

	mu      sync.Mutex
	passed  int
	holding int
	shut    chan struct{} // closed when the gate starts holding
	open    chan struct{} // closed by Open
	changed chan struct{} // signalled when holding changes
}

// NewGate returns a gate that holds every request once after requests
// matching match have gone through.
func NewGate(after int, match func(*http.Request) bool) *Gate {
	return &Gate{after: after, match: match, shut: make(chan struct{}), open: make(chan struct{}), changed: make(chan struct{}, 1)}
}

// Shut is closed once the gate holds requests.
func (g *Gate) Shut() <-chan struct{} { return g.shut }

// Open lets every held request and every later one through.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// Holding returns how many requests the gate holds now.
func (g *Gate) Holding() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holding
}

// WaitHolding blocks until the gate holds at least n requests (n > 0) or,
// with n == 0, none; it returns false if ctx ends first.
func (g *Gate) WaitHolding(ctx context.Context, n int) bool {
	for {
		h := g.Holding()
		if (n == 0 && h == 0) || (n > 0 && h >= n) {
			return true
		}
		select {
		case <-g.changed:
		case <-ctx.Done():
			return false
		}
	}
}

// Passed returns how many matching requests the gate let through before it shut.
func (g *Gate) Passed() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.passed
}

// admit returns nil once r may go on, or ctx's error when its client gave
// up while it was held.
func (g *Gate) admit(ctx context.Context, r *http.Request) error {
	g.mu.Lock()
	select {
	case <-g.open:
		g.mu.Unlock()
		return nil
	default:
	}
	if g.passed < g.after {
		if g.match(r) {
			g.passed++
			if g.passed == g.after {
				close(g.shut)
			}
		}
		g.mu.Unlock()
		return nil
	}
	g.holding++
	g.mu.Unlock()
	g.signal()
	defer func() {
		g.mu.Lock()
		g.holding--
		g.mu.Unlock()
		g.signal()
	}()
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gate) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// Wrap returns a transport that passes requests through the gate, for
// rest.Config.WrapTransport.
func (g *Gate) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		if err := g.admit(r.Context(), r); err != nil {
			return nil, err
		}
		return rt.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Applies matches the server-side apply of an object of resource whose name
// starts with prefix (PATCH .../<resource>/<name>).
func Applies(resource, prefix string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if r.Method != http.MethodPatch {
			return false
		}
		parent, name, ok := cutLast(r.URL.Path)
		if !ok {
			return false
		}
		_, res, _ := cutLast(parent)
		return res == resource && strings.HasPrefix(name, prefix)
	}
}

func cutLast(path string) (string, string, bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", "", false
	}
	return path[:i], path[i+1:], true
}
