package dashboard

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/httpserver"
)

// stateOfPage is the state the page at / is rendered in.
func stateOfPage(t *testing.T, d *Dashboard) string {
	t.Helper()
	m := regexp.MustCompile(`data-state="([0-9a-f]+)"`).FindStringSubmatch(get(t, d, "/").Body.String())
	require.NotNil(t, m)
	return m[1]
}

// connect opens /events on srv as a page in state would; the stream ends
// with the test.
func connect(t *testing.T, srv *httptest.Server, state string, header http.Header) <-chan event {
	t.Helper()
	return connectURL(t, srv.URL, state, header)
}

func connectURL(t *testing.T, base, state string, header http.Header) <-chan event {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/events?state="+state, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	return events(resp.Body)
}

// topIDs are the ids of the elements an event replaces, found as the
// page's script finds them: the data parsed as a <template>'s content (as a
// browser parses it), each child one element, the cells of a table.frag one
// each.
func topIDs(data string) []string {
	context := &html.Node{Type: html.ElementNode, Data: "template", DataAtom: atom.Template}
	nodes, err := html.ParseFragment(strings.NewReader(data), context)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, n := range nodes {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "table" && attr(n, "class") == "frag" {
			for _, td := range find(n, func(c *html.Node) bool { return c.Data == "td" && attr(c, "id") != "" }) {
				out = append(out, attr(td, "id"))
			}
			continue
		}
		out = append(out, attr(n, "id"))
	}
	return out
}

func TestAStatusChangeSendsOnlyThatEnvironmentsFragment(t *testing.T) {
	f := newFake(fleet(3)...)
	d := newDashboard(t, f, Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	stream := connect(t, srv, stateOfPage(t, d), nil)
	quiet(t, stream, 100*time.Millisecond) // the page is current: no refresh

	f.update("models-001", "staging", func(s *engine.Status) {
		s.Models[0].Version = "1.1.0"
		s.Phase = engine.Testing
	})
	ev := next(t, stream)
	assert.Equal(t, "env", ev.Name)
	assert.Equal(t, []string{"cell/models-001/staging/fraud-detector", "hist/models-001/staging"}, topIDs(ev.Data))
	assert.Contains(t, ev.Data, `<span class="ver">1.1.0</span>`)
	assert.Contains(t, ev.Data, "↻</span> testing")
	assert.Equal(t, stateOfPage(t, d), ev.ID, "the event's id is the state of a page that applied it")
	quiet(t, stream, 200*time.Millisecond)

	// A change that changes nothing shown sends nothing.
	f.update("models-001", "staging", func(*engine.Status) {})
	quiet(t, stream, 200*time.Millisecond)
}

func TestANewModelSendsItsRepositorysSection(t *testing.T) {
	f := newFake(fleet(2)...)
	d := newDashboard(t, f, Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	stream := connect(t, srv, stateOfPage(t, d), nil)

	f.update("models-000", "dev", func(s *engine.Status) {
		s.Models = append(s.Models, engine.ModelVersion{Name: "ranker", Version: "0.1.0"})
	})
	ev := next(t, stream)
	assert.Equal(t, "repo", ev.Name)
	assert.Equal(t, "repo/models-000", topIDs(ev.Data)[0])
	assert.Contains(t, ev.Data, `id="cell/models-000/prod/ranker"`, "the new row has a cell in every environment")
}

func TestAStaleOrReconnectingClientGetsARefresh(t *testing.T) {
	f := newFake(fleet(2)...)
	d := newDashboard(t, f, Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	state := stateOfPage(t, d)

	f.update("models-000", "dev", func(s *engine.Status) { s.Models[0].Version = "2.0.0" })
	ev := next(t, connect(t, srv, state, nil))
	assert.Equal(t, "refresh", ev.Name, "the page is older than its stream")
	assert.Contains(t, ev.Data, `id="repo/models-000"`)
	assert.Contains(t, ev.Data, `id="repo/models-001"`)
	assert.Contains(t, ev.Data, "2.0.0")
	assert.Equal(t, stateOfPage(t, d), ev.ID)

	// Last-Event-ID (the browser reconnecting) wins over the page's state.
	fresh := connect(t, srv, "stale", http.Header{"Last-Event-Id": {stateOfPage(t, d)}})
	quiet(t, fresh, 100*time.Millisecond)
}

// blockingResponse is a client that reads only when the test does: each
// write waits for the test to read it.
type blockingResponse struct {
	header  http.Header
	w       *io.PipeWriter
	writing atomic.Bool
	writes  atomic.Int64 // started
}

func (b *blockingResponse) Header() http.Header { return b.header }
func (b *blockingResponse) WriteHeader(int)     {}
func (b *blockingResponse) Flush()              {}
func (b *blockingResponse) Write(p []byte) (int, error) {
	b.writing.Store(true)
	b.writes.Add(1)
	defer b.writing.Store(false)
	return b.w.Write(p)
}

func TestASlowClientGetsOneRefreshNotABacklog(t *testing.T) {
	f := newFake(fleet(100)...)
	d := newDashboard(t, f, Options{MaxFragments: 32})
	pr, pw := io.Pipe()
	defer pr.Close()
	resp := &blockingResponse{header: http.Header{}, w: pw}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/events?state="+stateOfPage(t, d), nil).WithContext(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.ServeHTTP(resp, req); pw.Close() }()
	stream := bufio.NewReader(pr)

	read := func() event {
		t.Helper()
		got := make(chan event, 1)
		go func() { ev, _ := readEvent(stream); got <- ev }()
		select {
		case ev := <-got:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5 s")
		}
		return event{}
	}

	preamble, err := stream.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "retry: 2000\n", preamble, "subscribed, and the page is current")

	f.update("models-000", "dev", func(s *engine.Status) { s.Phase = engine.Applying })
	assert.Equal(t, []string{"cell/models-000/dev/fraud-detector", "hist/models-000/dev"}, topIDs(read().Data))

	// The client stops reading in the middle of the next event…
	written := resp.writes.Load()
	f.update("models-001", "dev", func(s *engine.Status) { s.Phase = engine.Applying })
	require.Eventually(t, func() bool { return resp.writes.Load() > written && resp.writing.Load() }, 5*time.Second, time.Millisecond,
		"the stream writes the next change")
	// …while every environment changes ten times.
	changes := 0
	for round := range 10 {
		for _, s := range f.Status() {
			f.update(s.Repository, s.Environment, func(s *engine.Status) { s.Summary = strings.Repeat("+", round) })
			changes++
		}
	}

	assert.Equal(t, []string{"cell/models-001/dev/fraud-detector", "hist/models-001/dev"}, topIDs(read().Data), "the event in flight completes")
	refresh := read()
	assert.Equal(t, "refresh", refresh.Name, "3,000 changes behind, the client gets the page once")
	var page strings.Builder
	require.NoError(t, d.views.main(&page, d.build(f.Status(), pagePanels(300))))
	assert.LessOrEqual(t, len(refresh.Data), page.Len()+len(page.String())/10, "a refresh is the size of one page, whatever the number of changes (%d)", changes)
	assert.Equal(t, stateOfPage(t, d), refresh.ID)

	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end with its client")
	}
}

func TestAClientThatLeavesIsCleanedUp(t *testing.T) {
	before := goleak.IgnoreCurrent()
	f := newFake(fleet(2)...)
	d := newDashboard(t, f, Options{})
	srv := httptest.NewServer(d)
	client := srv.Client()

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	resp, err := client.Do(req)
	require.NoError(t, err)
	assert.Equal(t, "refresh", next(t, events(resp.Body)).Name, "a client with no state gets the page")
	require.Equal(t, 1, f.subscribers())

	cancel()
	resp.Body.Close()
	require.Eventually(t, func() bool { return d.streams.Load() == 0 && f.subscribers() == 0 }, 5*time.Second, 5*time.Millisecond,
		"the stream and its subscription end with the client")
	f.update("models-000", "dev", func(s *engine.Status) { s.Phase = engine.Rendering }) // nobody to tell
	client.CloseIdleConnections()
	srv.Close()
	goleak.VerifyNone(t, before)
}

func TestStreamsEndWhenTheServerStops(t *testing.T) {
	f := newFake(fleet(1)...)
	stop := make(chan struct{})
	d := newDashboard(t, f, Options{Done: stop})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	stream := connect(t, srv, "", nil)
	next(t, stream)

	close(stop)
	select {
	case _, open := <-stream:
		assert.False(t, open, "the stream ends")
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived the server")
	}
	assert.Eventually(t, func() bool { return d.streams.Load() == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestAStreamOutlivesTheServersTimeouts(t *testing.T) {
	f := newFake(fleet(1)...)
	d := newDashboard(t, f, Options{Heartbeat: 50 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httpserver.New(ln.Addr().String(), d, httpserver.Options{ReadTimeout: 150 * time.Millisecond, WriteTimeout: 150 * time.Millisecond})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	stream := connectURL(t, "http://"+ln.Addr().String(), stateOfPage(t, d), nil)

	time.Sleep(500 * time.Millisecond) // past both timeouts, with heartbeats
	f.update("models-000", "prod", func(s *engine.Status) { s.Phase = engine.Waiting })
	ev := next(t, stream)
	assert.Equal(t, "env", ev.Name)
	assert.Contains(t, ev.Data, "waiting")
}

func TestStreamsAreCapped(t *testing.T) {
	d := newDashboard(t, newFake(fleet(1)...), Options{MaxStreams: 1})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	connect(t, srv, stateOfPage(t, d), nil)
	resp, err := srv.Client().Get(srv.URL + "/events")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestEventDataKeepsEveryLine(t *testing.T) {
	s := &stream{hashes: []uint64{1}}
	s.writeEvent("env", []byte("a\r\nb\rc\nd"))
	ev, err := readEvent(bufio.NewReader(strings.NewReader(s.buf.String())))
	require.NoError(t, err)
	assert.Equal(t, event{Name: "env", ID: combine([]uint64{1}), Data: "a\nb\nc\nd"}, ev)
}
