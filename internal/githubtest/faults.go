package githubtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Documentation URLs GitHub sends with rate-limit errors. go-github returns
// *github.AbuseRateLimitError for a 403 whose documentation_url ends in
// "secondary-rate-limits".
const (
	docsPrimaryLimit   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
	docsSecondaryLimit = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

// Fault is a failure the server answers instead of, or after, doing a
// request's work. Faults apply to authenticated requests only (a request with
// bad credentials gets its 401 first), in the order they were injected: the
// first fault that matches a request and has uses left takes it.
type Fault struct {
	// Method matches the request method exactly ("GET", "POST", ...); empty
	// matches any.
	Method string
	// Path matches the request path without the /api/v3 prefix and without
	// the query, segment by segment: a segment written in braces ("{o}",
	// "{number}") matches any one non-empty segment, any other segment
	// matches itself exactly (case-sensitive). A Path ending in "/" matches
	// every path that starts with it, as in net/http.ServeMux, so
	// "/repos/{o}/{r}/" matches every route of the repository. Empty matches
	// any path. "/repos/{o}/{r}/pulls" matches the list and create route but
	// not "/repos/acme/models/pulls/1".
	Path string
	// Times is how many matching requests the fault applies to; 0 means 1.
	Times int
	// Status is the status code answered. 0 means 403 for RateLimited and
	// Secondary (GitHub also sends 429 for either), 500 otherwise.
	Status int
	// RetryAfter, when positive, sets Retry-After in whole seconds, rounded up.
	// For RateLimited it also sets X-RateLimit-Reset that far ahead; left 0 it
	// is the current second, so go-github does not hold the client back.
	RetryAfter time.Duration
	// RateLimited answers GitHub's primary rate limit: X-RateLimit-Remaining
	// 0 with Limit, Used, Reset and Resource "core", and GitHub's message, so
	// that go-github returns *github.RateLimitError (for a 403).
	RateLimited bool
	// Secondary answers GitHub's secondary rate limit, with the
	// documentation_url GitHub uses, so that go-github returns
	// *github.AbuseRateLimitError (for a 403). Its RetryAfter comes from
	// Retry-After; without one, go-github falls back to X-RateLimit-Reset,
	// which the server keeps an hour ahead, and holds the client back as long.
	Secondary bool
	// AfterHandling does the request's real work (creates the pull request,
	// posts the status), then answers Status: the "GitHub created the pull
	// request but answered 502" case.
	AfterHandling bool
	// Hang answers nothing: the request blocks until its context ends (the
	// client gives up) or the test ends. With AfterHandling, the work is done
	// first.
	Hang bool
	// Body, when set, is answered as is (JSON) with Status instead of GitHub's
	// error shape: an empty list ("[]", Status 200) where the state holds
	// items, as a list taken a moment before a replica's write would be, or
	// an error message of the test's choosing.
	Body string
}

// fault is an injected Fault with the uses it has left.
type fault struct {
	Fault
	left int
}

// Inject adds f. A Fault GitHub could not produce (RateLimited and Secondary
// together, a Status outside 100-599, a negative Times, a Path not starting
// with "/") fails the test with t.Errorf and is not added.
func (s *Server) Inject(f Fault) {
	if err := f.validate(); err != nil {
		s.t.Errorf("githubtest: inject %+v: %v", f, err)
		return
	}
	left := f.Times
	if left == 0 {
		left = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f, left: left})
}

func (f Fault) validate() error {
	switch {
	case f.RateLimited && f.Secondary:
		return fmt.Errorf("a fault is a primary or a secondary rate limit, not both")
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("status %d is not an HTTP status", f.Status)
	case f.Times < 0:
		return fmt.Errorf("times %d is negative", f.Times)
	case f.Path != "" && !strings.HasPrefix(f.Path, "/"):
		return fmt.Errorf("path %q does not start with /", f.Path)
	}
	return nil
}

// takeFault returns the first fault matching r and uses it up once.
func (s *Server) takeFault(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if !f.matches(r.Method, r.URL.Path) {
			continue
		}
		f.left--
		if f.left == 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return f.Fault, true
	}
	return Fault{}, false
}

func (f Fault) matches(method, path string) bool {
	if f.Method != "" && f.Method != method {
		return false
	}
	return matchPath(f.Path, path)
}

// matchPath matches path against a Fault's Path pattern, as Fault.Path documents.
func matchPath(pattern, path string) bool {
	if pattern == "" {
		return true
	}
	prefix := strings.HasSuffix(pattern, "/")
	want := strings.Split(strings.TrimSuffix(pattern, "/"), "/")
	got := strings.Split(path, "/")
	if len(got) < len(want) || (!prefix && len(got) != len(want)) {
		return false
	}
	if prefix && len(got) == len(want) && !strings.HasSuffix(path, "/") {
		return false // "/repos/{o}/{r}/" does not match "/repos/acme/models"
	}
	for i, w := range want {
		wild := len(w) > 2 && w[0] == '{' && w[len(w)-1] == '}'
		if wild && got[i] == "" || !wild && got[i] != w {
			return false
		}
	}
	return true
}

// fail answers a request the way f says.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f Fault, id string) {
	if f.AfterHandling {
		s.mux.ServeHTTP(httptest.NewRecorder(), r)
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			// Returning would send an empty 200 to a client still waiting;
			// abort the connection instead.
			panic(http.ErrAbortHandler)
		}
	}

	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
		if f.RateLimited || f.Secondary {
			status = http.StatusForbidden
		}
	}
	h := w.Header()
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(ceilSeconds(f.RetryAfter), 10))
	}
	stamp := time.Now().UTC().Format("2006-01-02 15:04:05 MST")
	switch {
	case f.RateLimited:
		reset := time.Now().Unix() + ceilSeconds(f.RetryAfter)
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", h.Get("X-RateLimit-Limit"))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
		msg := fmt.Sprintf("API rate limit exceeded for user ID %d. If you reach out to GitHub Support "+
			"for help, please include the request ID %s and timestamp %s.", user(r, s.opts.Login).ID, id, stamp)
		writeError(w, status, msg, docsPrimaryLimit)
	case f.Secondary:
		msg := fmt.Sprintf("You have exceeded a secondary rate limit. Please wait a few minutes before you "+
			"try again. If you reach out to GitHub Support for help, please include the request ID %s "+
			"and timestamp %s.", id, stamp)
		writeError(w, status, msg, docsSecondaryLimit)
	case f.Body != "":
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, f.Body)
	default:
		writeError(w, status, http.StatusText(status), docsREST)
	}
}

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
