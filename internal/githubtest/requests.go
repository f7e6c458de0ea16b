package githubtest

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
)

// maxLoggedBody caps the bytes of a request body kept in the log.
const maxLoggedBody = 1 << 20

// Request is one request the server received, logged before it is handled,
// so that tests can count calls and prove what was (or was never) sent.
type Request struct {
	// ID is the X-GitHub-Request-Id the server answered with.
	ID     string
	Method string
	// Path is the URL path without the /api/v3 prefix and without the query.
	Path  string
	Query url.Values
	// Authorization is the request's Authorization header, as sent.
	Authorization string
	// Header is every header of the request, Authorization included.
	Header http.Header
	// Body is the request body, cut at 1 MiB; BodyTruncated says it was cut.
	Body          []byte
	BodyTruncated bool
	// Status is the status code answered; 0 while the request is being
	// handled, or when it was never answered (a hung request).
	Status int
}

// Requests returns every request received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.clone()
	}
	return out
}

func (r Request) clone() Request {
	r.Query = maps.Clone(r.Query)
	r.Header = r.Header.Clone()
	r.Body = slices.Clone(r.Body)
	return r
}

// record logs a request and returns its index in the log and its request id.
func (s *Server) record(r *http.Request, body []byte) (int, string) {
	truncated := len(body) > maxLoggedBody
	if truncated {
		body = body[:maxLoggedBody]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.requests)
	id := fmt.Sprintf("FE77:%04X:%06X", repoID, i+1)
	s.requests = append(s.requests, Request{
		ID:            id,
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.Query(),
		Authorization: r.Header.Get("Authorization"),
		Header:        r.Header.Clone(),
		Body:          slices.Clone(body),
		BodyTruncated: truncated,
	})
	return i, id
}

// finish records the status a request was answered with.
func (s *Server) finish(i, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[i].Status = status
}

// recorder remembers the status code written through it.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
