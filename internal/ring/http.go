package ring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The ring's HTTP surface between members.
const (
	NotifyPath = "/ring/v1/notify"
	StatusPath = "/ring/v1/status"

	// MaxNotifyBytes caps a notify body; a larger one is answered 413.
	MaxNotifyBytes = 64 << 10
	// MaxStatusBytes caps a status answer FetchStatus reads.
	MaxStatusBytes = 8 << 20
	// ForwardTimeout bounds Forward, its one retry included.
	ForwardTimeout = 2 * time.Second
	// StatusTimeout bounds FetchStatus.
	StatusTimeout = 5 * time.Second
)

// Notification kinds a member forwards: a push to a tracked branch, a
// change of the checks on a commit, or a pull request to preview.
const (
	KindPush        = "push"
	KindChecks      = "checks"
	KindPullRequest = "pull_request"
)

// Notification is what a member that received a webhook for a repository it
// does not own hands to the owner: the body of a notify request.
type Notification struct {
	Repository string `json:"repository"`
	Kind       string `json:"kind"`
	// Payload is the kind's own detail, opaque to the ring: required for
	// KindPullRequest (which pull request, at which head), absent otherwise.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// valid says what is wrong with n, or "".
func (n Notification) valid() string {
	switch {
	case n.Repository == "":
		return "no repository"
	case n.Kind != KindPush && n.Kind != KindChecks && n.Kind != KindPullRequest:
		return fmt.Sprintf("kind %q: want push, checks or pull_request", n.Kind)
	case n.Kind == KindPullRequest && !bytes.HasPrefix(bytes.TrimSpace(n.Payload), []byte("{")):
		return "a pull_request notification needs its payload object"
	}
	return ""
}

// Handler serves the ring's endpoints to other members:
//   - POST NotifyPath takes a JSON Notification that a member which received
//     a webhook for a repository it does not own forwards to the owner, and
//     calls notify. notify must not block (it
//     enqueues); it returns false when it cannot take the notification, which
//     is answered 503 with Retry-After. Accepted is 202. A body over
//     MaxNotifyBytes is 413, a malformed one or an unknown kind 400. Unknown
//     fields are ignored, so members of two versions can talk during an upgrade.
//   - GET StatusPath answers 200 with the JSON bytes status returns, or 500
//     with its error.
//
// self is this member's identity (Options.Identity). Every request must be
// signed with the token for self (sign.go) within MaxSkew of this member's
// clock; the signature is checked, in constant time, on the body read up to
// MaxNotifyBytes, before anything else is looked at or parsed; otherwise 401,
// and a request signed for another member is refused too. An empty token or
// self refuses every request. Other paths are 404, other methods 405; a nil
// func makes its endpoint answer 501.
func Handler(token, self string, notify func(Notification) bool, status func() ([]byte, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var method string
		switch r.URL.Path {
		case NotifyPath:
			method = http.MethodPost
		case StatusPath:
			method = http.MethodGet
		default:
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxNotifyBytes))
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			w.Header().Set("Connection", "close")
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil || !verify(r, self, token, body, time.Now()) {
			// Whatever else a stranger sent is not worth draining.
			w.Header().Set("Connection", "close")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		// Authenticated from here on.
		if r.Method != method {
			w.Header().Set("Allow", method)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case method == http.MethodGet && status != nil:
			serveStatus(w, status)
		case method == http.MethodPost && notify != nil:
			serveNotify(w, body, notify)
		default:
			http.Error(w, "not served by this member", http.StatusNotImplemented)
		}
	})
}

func serveNotify(w http.ResponseWriter, body []byte, notify func(Notification) bool) {
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if why := n.valid(); why != "" {
		http.Error(w, "body: "+why, http.StatusBadRequest)
		return
	}
	if !notify(n) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func serveStatus(w http.ResponseWriter, status func() ([]byte, error)) {
	b, err := status()
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// Forward hands notification n to member m's Handler. It is bounded by
// ForwardTimeout (or ctx, if sooner) and tries once more only when the first
// attempt got no answer (a connection reset, say); an answer, even 503, is
// final. client carries the connection pool: reuse one (nil: a new one).
// Forward calls through a copy of client whose CheckRedirect refuses to
// follow a redirect (client itself is not changed), so a member is only ever
// called at its own address. The request is signed with token for
// m.Identity (sign.go); the token is never sent and never in an error, and
// neither is the body of a non-2xx answer: only its status code. An error
// leads with the member.
func Forward(ctx context.Context, client *http.Client, m Member, token string, n Notification) error {
	repo := n.Repository
	if why := n.valid(); why != "" {
		return fmt.Errorf("member %s: notify %s: %s", m.Identity, repo, why)
	}
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("member %s: notify %s: %w", m.Identity, repo, err)
	}
	for attempt := 0; ; attempt++ {
		_, err = call(ctx, client, m, token, http.MethodPost, NotifyPath, body, 512)
		if _, answered := errors.AsType[*answerError](err); err == nil || answered || attempt == 1 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("member %s: notify %s: %w", m.Identity, repo, err)
	}
	return nil
}

// FetchStatus returns member m's status, the bytes its Handler's status func
// returned. It is bounded by StatusTimeout (or ctx, if sooner) and reads at
// most MaxStatusBytes. It signs and calls as Forward does: for m.Identity,
// through a copy of client that follows no redirect, with only the status
// code of a non-2xx answer in its error, which leads with the member.
func FetchStatus(ctx context.Context, client *http.Client, m Member, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, StatusTimeout)
	defer cancel()
	b, err := call(ctx, client, m, token, http.MethodGet, StatusPath, nil, MaxStatusBytes)
	if err != nil {
		return nil, fmt.Errorf("member %s: status: %w", m.Identity, err)
	}
	return b, nil
}

// answerError is a member's non-2xx answer. It carries the status code
// only: the body and the reason phrase are the answering server's words, and
// an error is logged and shown.
type answerError struct {
	code int
}

func (e *answerError) Error() string { return "answered " + strconv.Itoa(e.code) }

// call sends one request and returns the answer's body, read up to limit.
func call(ctx context.Context, client *http.Client, m Member, token, method, path string, body []byte, limit int64) ([]byte, error) {
	if m.Address == "" {
		return nil, errors.New("no address on its lease")
	}
	if err := checkAddress(m.Address); err != nil {
		return nil, fmt.Errorf("address on its lease: %w", err)
	}
	if token == "" {
		return nil, errors.New("no token")
	}
	var c http.Client
	if client != nil {
		c = *client // shares the Transport, so the connection pool
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(m.Address, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	sign(req, token, m.Identity, body, time.Now())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		// Drain a little so the connection can be reused; never kept.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &answerError{code: resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("answer over %d bytes", limit)
	}
	return b, nil
}
