package webhooks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/httpserver"
)

// serve runs h behind the hardened server on a loopback port and returns
// its address.
func serve(t *testing.T, h http.Handler) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httpserver.New(ln.Addr().String(), h, httpserver.Options{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// post sends a signed push over the network and returns the status.
func post(addr, delivery string) (int, error) {
	body, err := readFixture("push.json")
	if err != nil {
		return 0, err
	}
	r, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-GitHub-Delivery", delivery)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(r)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// memory samples what the process holds: the Go runtime's memory not
// returned to the OS (heap, stacks, runtime structures) and the RSS.
type memory struct{ goBytes, rss uint64 }

func readMemory() memory {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	m := memory{goBytes: s[0].Value.Uint64() - s[1].Value.Uint64()}
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			m.rss = kb << 10
		}
	}
	return m
}

// growth is how much memory grew from before to peak, zero if it shrank.
func growth(before, peak uint64) uint64 {
	if peak < before {
		return 0
	}
	return peak - before
}

// peakMemory samples memory every 5ms until stop is called, and returns the
// peaks.
func peakMemory() (stop func() memory) {
	var peak memory
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			m := readMemory()
			peak.goBytes, peak.rss = max(peak.goBytes, m.goBytes), max(peak.rss, m.rss)
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() memory { close(done); <-finished; return peak }
}

// TestAFloodOfBogusBodiesCannotExhaustMemory sends 500 requests at once, each
// with a bogus signature and a 5 MiB chunked body that trickles in, to the
// receiver with its default limits behind the real server. At most
// DefaultMaxConcurrentBodies bodies are read at once, each to at most
// DefaultMaxBodyBytes, so the memory they can hold is N × cap (32 MiB). The
// bound asserted is twice that plus 64 MiB (128 MiB): the garbage collector
// lets the heap grow to twice what is live before collecting, so refused
// bodies wait up to one cycle, and 64 MiB covers the 500 connections on both
// sides and their goroutines. Under the race detector RSS also holds its
// shadow memory, so RSS gets raceMemoryFactor times the bound.
// Measured on 2 cores: Go memory +45 to +61 MiB; RSS +130 to +200 MiB with
// -race on the first run in a process. Without the semaphore the same flood
// grows Go memory by ~350 MiB and RSS by ~1 GiB, and leaves requests
// unanswered.
func TestAFloodOfBogusBodiesCannotExhaustMemory(t *testing.T) {
	const (
		clients  = 500
		bodySize = 5 << 20
		piece    = 64 << 10
		bound    = 2*DefaultMaxConcurrentBodies*DefaultMaxBodyBytes + 64<<20
	)
	q := &queue{}
	h, err := NewGitHub(Options{
		Secrets:      [][]byte{secret},
		Repositories: []Repository{{Name: "ml-models", FullName: "acme/ml-models", Branch: "main"}},
		Sink:         q.offer,
	})
	require.NoError(t, err)
	addr := serve(t, h)

	chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", piece, bytes.Repeat([]byte("x"), piece))) // shared, never written
	bogus := "sha256=" + strings.Repeat("0", 64)
	statuses := make([]int, clients)
	retryAfter := make([]string, clients)
	lost := make([]error, clients)
	var headersSent, wg sync.WaitGroup
	headersSent.Add(clients)
	bodies := make(chan struct{})

	debug.FreeOSMemory() // a baseline without the garbage of earlier tests
	before := readMemory()
	stop := peakMemory()
	for i := range clients {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				lost[i] = err
				headersSent.Done()
				return
			}
			defer conn.Close()
			_, err = fmt.Fprintf(conn, "POST /webhooks/github HTTP/1.1\r\nHost: ferry\r\nX-GitHub-Event: push\r\n"+
				"X-GitHub-Delivery: flood-%d\r\nX-Hub-Signature-256: %s\r\nContent-Type: application/json\r\n"+
				"Transfer-Encoding: chunked\r\n\r\n", i, bogus)
			headersSent.Done()
			if err != nil {
				lost[i] = err
				return
			}
			// Every client has sent its headers before any sends its body,
			// and bodies trickle in (a piece every 10ms), so the requests
			// overlap. Like a real client, it stops sending once answered.
			<-bodies
			in := bufio.NewReader(conn)
			answered := func() bool {
				conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
				_, err := in.Peek(1)
				var ne net.Error
				return !errors.As(err, &ne) || !ne.Timeout()
			}
			for sent := 0; sent < bodySize && !answered(); sent += piece {
				if _, err := conn.Write(chunk); err != nil {
					break
				}
			}
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(in, nil)
			if err != nil {
				lost[i] = err
				return
			}
			resp.Body.Close()
			statuses[i], retryAfter[i] = resp.StatusCode, resp.Header.Get("Retry-After")
		})
	}
	headersSent.Wait()
	close(bodies)
	wg.Wait()
	peak := stop()

	goGrowth, rssGrowth := growth(before.goBytes, peak.goBytes), growth(before.rss, peak.rss)
	t.Logf("Go runtime memory %d → peak %d MiB (+%d); RSS %d → peak %d MiB (+%d)",
		before.goBytes>>20, peak.goBytes>>20, goGrowth>>20, before.rss>>20, peak.rss>>20, rssGrowth>>20)
	assert.Less(t, goGrowth, uint64(bound), "Go runtime memory grew past the bound")
	assert.Less(t, rssGrowth, uint64(bound*raceMemoryFactor), "RSS grew past the bound")

	// The receiver's own count says how it answered every request.
	outcomes := map[string]float64{}
	for _, o := range []string{outcomeAccepted, outcomeIgnored, outcomeDuplicate, outcomePong, outcomeUnauthorized,
		outcomeTooLarge, outcomeBadRequest, outcomeMethod, outcomeUnavailable, outcomeOverloaded} {
		if n := testutil.ToFloat64(h.requests.WithLabelValues("push", o)); n > 0 {
			outcomes[o] = n
		}
	}
	t.Logf("outcomes %v", outcomes)
	assert.Equal(t, float64(clients), outcomes[outcomeTooLarge]+outcomes[outcomeOverloaded]+outcomes[outcomeUnauthorized],
		"every request is refused with 401, 413 or 503")
	assert.Positive(t, outcomes[outcomeOverloaded], "the flood overran the body slots")
	assert.Positive(t, outcomes[outcomeTooLarge], "bodies were read up to the cap")
	assert.Empty(t, q.taken())

	// And what the clients saw. A client starved of CPU past the server's
	// 500ms grace before it resets a connection with unread body bytes can
	// lose its answer; that is logged, never a success.
	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		if s == http.StatusServiceUnavailable {
			assert.Equal(t, "1", retryAfter[i], "a refused client is told when to retry")
		}
		if lost[i] != nil {
			t.Logf("client %d lost its answer: %v", i, lost[i])
		}
	}
	t.Logf("answers seen by the clients %v (0: lost)", count)
	for s := range count {
		assert.Contains(t, []int{0, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable}, s)
	}

	status, err := post(addr, "after-the-flood")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, status, "every slot was given back")
	assert.Len(t, q.taken(), 1)
}

func oneBodyAtATime(o *Options) { o.MaxConcurrentBodies = 1 }

func TestARequestFindingEveryBodySlotTakenIs503AtOnce(t *testing.T) {
	f := newFixture(t, oneBodyAtATime)
	body := payload(t, "push.json")
	// The first request holds the only slot while its body trickles in.
	pr, pw := io.Pipe()
	first := make(chan int)
	go func() { first <- f.send(req{event: "push", delivery: "slow", body: body, reader: pr}).Code }()
	require.Eventually(t, func() bool { return f.h.bodies.inUse() == 1 }, 5*time.Second, time.Millisecond)

	rec := f.send(req{event: "push", delivery: "second", body: body})
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "overloaded: retry later\n", rec.Body.String())
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Equal(t, "close", rec.Header().Get("Connection"), "the stranger's connection is not kept")
	assert.Equal(t, 1.0, testutil.ToFloat64(f.h.requests.WithLabelValues("push", outcomeOverloaded)))
	assert.NotContains(t, f.logs.String(), "delivery=second", "an unauthenticated delivery id is not logged")

	pw.Write(body)
	pw.Close()
	assert.Equal(t, http.StatusAccepted, <-first)
	assert.Equal(t, http.StatusAccepted, f.send(req{event: "push", delivery: "second", body: body}).Code,
		"once the slot is free the redelivery goes through")
}

// panicReader stands for anything that panics while a body is read.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("reader exploded") }

// cutReader gives some bytes, then fails as the server does when a client
// goes away mid-body.
type cutReader struct{ sent bool }

func (c *cutReader) Read(p []byte) (int, error) {
	if c.sent {
		return 0, io.ErrUnexpectedEOF
	}
	c.sent = true
	return copy(p, `{"ref":`), nil
}

func TestEveryWayOutOfReadingABodyGivesItsSlotBack(t *testing.T) {
	body := payload(t, "push.json")
	cases := []struct {
		name   string
		r      req
		status int // 0: the handler panics
	}{
		{"a signed push", req{body: body}, http.StatusAccepted},
		{"a bad signature", req{body: body, headers: map[string]string{"X-Hub-Signature-256": Sign([]byte("guess"), body)}}, http.StatusUnauthorized},
		{"a chunked body over the cap", req{body: body, reader: bytes.NewReader(make([]byte, DefaultMaxBodyBytes+1))}, http.StatusRequestEntityTooLarge},
		{"a body the client cut short", req{body: body, reader: &cutReader{}}, http.StatusBadRequest},
		{"a panic while reading", req{body: body, reader: panicReader{}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, oneBodyAtATime)
			tc.r.event, tc.r.delivery = "push", "first"
			var status int
			panicked := func() (panicked bool) {
				defer func() { panicked = recover() != nil }()
				status = f.send(tc.r).Code
				return false
			}()
			if tc.status == 0 {
				require.True(t, panicked)
			} else {
				require.False(t, panicked)
				require.Equal(t, tc.status, status)
			}
			assert.Equal(t, http.StatusAccepted, f.send(req{event: "push", delivery: "next", body: body}).Code,
				"the only slot was given back")
		})
	}
}

func TestAClientThatDisconnectsMidBodyGivesItsSlotBack(t *testing.T) {
	for _, framing := range []string{"Content-Length: 100000", "Transfer-Encoding: chunked"} {
		t.Run(framing, func(t *testing.T) {
			f := newFixture(t, oneBodyAtATime)
			addr := serve(t, f.h)
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			_, err = fmt.Fprintf(conn, "POST /webhooks/github HTTP/1.1\r\nHost: ferry\r\nX-GitHub-Event: push\r\n"+
				"X-Hub-Signature-256: sha256=%s\r\n%s\r\n\r\n", strings.Repeat("0", 64), framing)
			require.NoError(t, err)
			if strings.HasPrefix(framing, "Transfer") {
				_, err = io.WriteString(conn, "400\r\n"+strings.Repeat("x", 0x400)+"\r\n")
			} else {
				_, err = io.WriteString(conn, strings.Repeat("x", 1000))
			}
			require.NoError(t, err)
			require.Eventually(t, func() bool { return f.h.bodies.inUse() == 1 }, 5*time.Second, time.Millisecond)
			status, err := post(addr, "while-held")
			require.NoError(t, err)
			require.Equal(t, http.StatusServiceUnavailable, status, "the half-sent body holds the only slot")

			conn.Close()
			n := 0
			assert.Eventually(t, func() bool {
				n++
				status, err := post(addr, fmt.Sprintf("after-%d", n))
				return err == nil && status == http.StatusAccepted
			}, 5*time.Second, 10*time.Millisecond, "the slot was given back when the client left")
		})
	}
}

func TestABodyOfExactlyTheCapIsRead(t *testing.T) {
	const limit = 64 << 10
	// JSON allows trailing whitespace, so a real push can be padded to the cap.
	body := payload(t, "push.json")
	body = append(body, bytes.Repeat([]byte(" "), limit-len(body))...)
	small := func(o *Options) { o.MaxBodyBytes = limit }
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked %v", chunked), func(t *testing.T) {
			f := newFixture(t, small)
			r := req{event: "push", delivery: "at-cap", body: body}
			over := req{event: "push", delivery: "over-cap", body: append(body, ' ')}
			if chunked {
				r.reader, over.reader = bytes.NewReader(r.body), bytes.NewReader(over.body)
			}
			assert.Equal(t, http.StatusAccepted, f.send(r).Code)
			assert.Equal(t, http.StatusRequestEntityTooLarge, f.send(over).Code)
			assert.Len(t, f.q.taken(), 1)
		})
	}
}

func TestNewGitHubFillsInTheLimits(t *testing.T) {
	f := newFixture(t)
	assert.Equal(t, int64(DefaultMaxBodyBytes), f.h.maxBody)
	assert.Equal(t, DefaultMaxConcurrentBodies, cap(f.h.bodies))
}
