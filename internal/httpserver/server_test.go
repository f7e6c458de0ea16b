package httpserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func serve(t *testing.T, opts Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := New(ln.Addr().String(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}), opts)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestEveryBoundIsSetToItsDocumentedDefault(t *testing.T) {
	srv := New(":0", http.NotFoundHandler(), Options{})
	assert.Equal(t, 5*time.Second, srv.ReadHeaderTimeout)
	assert.Equal(t, 15*time.Second, srv.ReadTimeout)
	assert.Equal(t, 15*time.Second, srv.WriteTimeout)
	assert.Equal(t, 60*time.Second, srv.IdleTimeout)
	assert.Equal(t, 64<<10, srv.MaxHeaderBytes)
}

func TestEveryBoundCanBeSet(t *testing.T) {
	srv := New(":0", http.NotFoundHandler(), Options{
		ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
		IdleTimeout: 4 * time.Second, MaxHeaderBytes: 5,
	})
	assert.Equal(t, time.Second, srv.ReadHeaderTimeout)
	assert.Equal(t, 2*time.Second, srv.ReadTimeout)
	assert.Equal(t, 3*time.Second, srv.WriteTimeout)
	assert.Equal(t, 4*time.Second, srv.IdleTimeout)
	assert.Equal(t, 5, srv.MaxHeaderBytes)
}

// safety bounds how long a test waits for the server to cut a client off.
// Every other bound of the server under test is an hour, so only the bound
// the test is about can close the connection before it: if that bound did
// not work, the test would fail here, never pass late.
const safety = 30 * time.Second

// onlyBound returns opts with every other timeout an hour.
func onlyBound(opts Options) Options {
	hour := func(d *time.Duration) {
		if *d == 0 {
			*d = time.Hour
		}
	}
	hour(&opts.ReadHeaderTimeout)
	hour(&opts.ReadTimeout)
	hour(&opts.WriteTimeout)
	hour(&opts.IdleTimeout)
	return opts
}

// closedByServer reads from conn until the server closes it (true), or the
// safety deadline passes (false). What the server answered before closing
// is returned.
func closedByServer(t *testing.T, conn net.Conn) (string, bool) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(safety)))
	b, err := io.ReadAll(conn)
	if isTimeout(err) {
		return string(b), false
	}
	return string(b), true // EOF or a reset: the server closed it
}

func TestASlowLorisClientIsCutOff(t *testing.T) {
	addr := serve(t, onlyBound(Options{ReadHeaderTimeout: 200 * time.Millisecond}))
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /webhooks/github HTTP/1.1\r\nHost: x\r\n")
	require.NoError(t, err)

	// Dribble one header byte every 10 ms, never finishing the headers,
	// until the server hangs up.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(conn, "X"); err != nil {
					return
				}
			}
		}
	}()
	answer, closed := closedByServer(t, conn)
	assert.True(t, closed, "the server must drop a client that never finishes its headers (still open after %s)", safety)
	assert.NotContains(t, answer, "200 OK", "no request was served")
}

func TestABodyThatNeverEndsIsCutOff(t *testing.T) {
	addr := serve(t, onlyBound(Options{ReadTimeout: 300 * time.Millisecond}))
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	require.NoError(t, err)

	// Send chunks until a write fails: the server closed the connection.
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 1024, strings.Repeat("x", 1024))
	wrote := make(chan error, 1)
	go func() {
		for {
			if _, err := io.WriteString(conn, chunk); err != nil {
				wrote <- err
				return
			}
		}
	}()
	_, closed := closedByServer(t, conn)
	assert.True(t, closed, "the server must close a connection whose body never ends (still open after %s)", safety)
	conn.Close() // ends the writer if the server did not
	assert.Error(t, <-wrote)
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	addr := serve(t, Options{MaxHeaderBytes: 1 << 10})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
