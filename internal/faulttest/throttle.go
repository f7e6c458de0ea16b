package faulttest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Throttle answers every request 429 Too Many Requests with a Retry-After,
// as a kube-apiserver under load does (API Priority and Fairness), while it
// is on; the request never reaches the server. Off, it passes requests through.
type Throttle struct {
	// RetryAfter is what the 429s ask the client to wait; 0 means 1s.
	RetryAfter time.Duration

	on        atomic.Bool
	throttled atomic.Int64
}

// Set turns throttling on or off.
func (th *Throttle) Set(on bool) { th.on.Store(on) }

// Throttled returns how many requests were answered 429.
func (th *Throttle) Throttled() int64 { return th.throttled.Load() }

// Wrap returns a transport that throttles, for rest.Config.WrapTransport.
func (th *Throttle) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		if !th.on.Load() {
			return rt.RoundTrip(r)
		}
		th.throttled.Add(1)
		if r.Body != nil {
			r.Body.Close()
		}
		wait := th.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		body := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":` +
			strconv.Itoa(int(wait.Seconds())) + `},"code":429}`
		return &http.Response{
			Status:     "429 Too Many Requests",
			StatusCode: http.StatusTooManyRequests,
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{
				"Content-Type": {"application/json"},
				"Retry-After":  {strconv.Itoa(int(wait.Seconds()))},
			},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       r,
		}, nil
	})
}
