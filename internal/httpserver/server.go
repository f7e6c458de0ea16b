// Package httpserver builds the http.Server Ferry listens with: every timeout
// and the header size bounded, so a slow or hostile client cannot hold a
// connection or memory for long.
package httpserver

import (
	"net/http"
	"time"
)

// Options bounds the server. The zero value gives the defaults.
type Options struct {
	// ReadHeaderTimeout bounds reading the request headers (slow-loris); 0 means 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, body included; 0 means 15s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response; 0 means 15s.
	WriteTimeout time.Duration
	// IdleTimeout bounds an idle keep-alive connection; 0 means 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request headers; 0 means 64 KiB.
	MaxHeaderBytes int
}

// New returns a server for addr with every bound set.
func New(addr string, h http.Handler, opts Options) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	maxHeader := opts.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 64 << 10
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: or(opts.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       or(opts.ReadTimeout, 15*time.Second),
		WriteTimeout:      or(opts.WriteTimeout, 15*time.Second),
		IdleTimeout:       or(opts.IdleTimeout, 60*time.Second),
		MaxHeaderBytes:    maxHeader,
	}
}
