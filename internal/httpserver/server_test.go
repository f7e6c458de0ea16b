package httpserver

import (
	"bufio"
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

func TestEveryBoundIsSetByDefault(t *testing.T) {
	srv := New(":0", http.NotFoundHandler(), Options{})
	assert.NotZero(t, srv.ReadHeaderTimeout)
	assert.NotZero(t, srv.ReadTimeout)
	assert.NotZero(t, srv.WriteTimeout)
	assert.NotZero(t, srv.IdleTimeout)
	assert.NotZero(t, srv.MaxHeaderBytes)
}

func TestASlowLorisClientIsCutOff(t *testing.T) {
	addr := serve(t, Options{ReadHeaderTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()

	start := time.Now()
	_, err = io.WriteString(conn, "POST /webhooks/github HTTP/1.1\r\nHost: x\r\n")
	require.NoError(t, err)
	// Dribble one header byte at a time, never finishing the headers.
	closed := false
	for i := 0; i < 50 && !closed; i++ {
		time.Sleep(50 * time.Millisecond)
		if _, err := io.WriteString(conn, "X"); err != nil {
			closed = true
		}
		conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closed = true
		}
	}
	assert.True(t, closed, "the server must drop a client that never finishes its headers")
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestABodyThatNeverEndsIsCutOff(t *testing.T) {
	addr := serve(t, Options{ReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	require.NoError(t, err)
	start := time.Now()
	var werr error
	for time.Since(start) < 3*time.Second && werr == nil {
		_, werr = io.WriteString(conn, "1\r\nx\r\n")
		time.Sleep(20 * time.Millisecond)
	}
	assert.Error(t, werr, "the server must close a connection whose body never ends")
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
