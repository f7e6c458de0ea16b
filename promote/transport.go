package promote

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/google/go-github/v60/github"
)

// retryTransport waits out GitHub's rate limits and retries what is safe to
// retry, below go-github, so every call gets the same discipline:
//
//   - 429, or 403 with Retry-After or X-RateLimit-Remaining: 0 (primary and
//     secondary rate limits): the request was not acted on; wait as GitHub
//     says (Retry-After, else until X-RateLimit-Reset, else a minute for a
//     secondary limit), at most maxWait, and send it again. A longer wait is
//     not waited out: the response goes back and the caller classes it
//     transient.
//   - 5xx and network errors: retried with backoff for GET and HEAD only. A
//     write may have happened (GitHub answers 502 after creating a PR), so it
//     is returned, and the caller looks its result up instead of repeating it.
type retryTransport struct {
	base    http.RoundTripper
	maxWait time.Duration
	retries int
	timeout time.Duration
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.once(req)
		wait, retry := t.retryAfter(req, resp, err, attempt)
		if !retry || attempt >= t.retries {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

// once sends one request, bounded by the per-request timeout. The body of a
// successful response is read by the caller after RoundTrip returns, so the
// timeout's cancel is tied to the body's Close.
func (t *retryTransport) once(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// retryAfter decides whether to send req again, and after how long.
func (t *retryTransport) retryAfter(req *http.Request, resp *http.Response, err error, attempt int) (time.Duration, bool) {
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead
	if err != nil {
		_, isNet := errors.AsType[net.Error](err)
		return backoff(attempt), idempotent && isNet && req.Context().Err() == nil
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode == http.StatusForbidden && rateLimited(resp)):
		wait := rateLimitWait(resp)
		return wait, wait <= t.maxWait
	case resp.StatusCode >= 500:
		return backoff(attempt), idempotent
	}
	return 0, false
}

// rateLimited tells a rate-limited 403 from a permission 403.
func rateLimited(resp *http.Response) bool {
	return resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0"
}

// rateLimitWait is how long GitHub asks to wait: Retry-After in seconds,
// else until X-RateLimit-Reset, else a minute (GitHub's advice for a
// secondary limit that names no time).
func rateLimitWait(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			if d := time.Until(time.Unix(reset, 0)); d > 0 {
				return d
			}
			return 0
		}
	}
	return time.Minute
}

// backoff is 0.5 s, 1 s, 2 s … with ±20 % jitter.
func backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << attempt
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rewind returns req ready to be sent again, with a fresh body.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.GetBody == nil {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Body = body
	return req, nil
}

// IsTransient reports whether an error of this package is worth retrying
// later with backoff: rate limits that outlasted the wait, 5xx answers,
// network errors and deadlines. Bad credentials, missing permissions, a
// repository that does not exist and refused input are not: they need a
// person.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	// An error that knows its class answers first: a token that could not
	// be minted reaches callers wrapped in a *url.Error, which is a
	// net.Error whatever its cause.
	var tr interface{ Transient() bool }
	if errors.As(err, &tr) {
		return tr.Transient()
	}
	if _, ok := errors.AsType[*github.RateLimitError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*github.AbuseRateLimitError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if er, ok := errors.AsType[*github.ErrorResponse](err); ok && er.Response != nil {
		code := er.Response.StatusCode
		return code >= 500 || code == http.StatusTooManyRequests || (code == http.StatusForbidden && rateLimited(er.Response))
	}
	return false
}
