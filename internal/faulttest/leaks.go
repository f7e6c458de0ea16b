package faulttest

import (
	"testing"

	"go.uber.org/goleak"
)

// libraryGoroutines are goroutines that outlive a stopped engine by design,
// not by a leak: the idle keep-alive connections (HTTP/1 and HTTP/2) of the
// transports client-go caches for the life of the process, and of the
// test's own clients. (testenv hands out cluster configs with their certificates as
// data, so client-go starts no certificate-file watchers that never stop.)
var libraryGoroutines = []goleak.Option{
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*http2ClientConn).readLoop"),
}

// CheckLeaks fails t when goroutines started during it are still running
// once it and all its cleanups have ended (so the engine it started has
// stopped), beyond the libraryGoroutines. Call it first in the test: its
// check runs last. goleak retries for a while, so goroutines on their way
// out are not counted. A test that already failed is not checked again.
func CheckLeaks(t *testing.T) {
	t.Helper()
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, libraryGoroutines...)
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		goleak.VerifyNone(t, opts...)
	})
}
