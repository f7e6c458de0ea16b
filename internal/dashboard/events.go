package dashboard

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
)

// events streams status changes as Server-Sent Events until the client
// goes, Options.Done closes or a write fails:
//
//   - "env": one environment's fragment (its cells and history panel);
//   - "repo": a repository's section, when a change adds or removes a row;
//   - "refresh": the whole of <main>, when the client's state is not the
//     current one (its page is older than its stream, it reconnected after
//     missing changes) or when more than MaxFragments environments changed
//     since the stream last wrote: a client that cannot keep up gets one
//     refresh, not a backlog.
//
// Each event's id is the state the page is in once it is applied.
// Buffering per stream is bounded: the engine's subscription coalesces
// changes to at most one mark per environment, and a stream holds one batch
// (at most MaxFragments fragments, or one page) while it writes it.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	if d.streams.Add(1) > int64(d.opts.MaxStreams) {
		d.streams.Add(-1)
		http.Error(w, "too many dashboard streams: close another tab or raise the limit", http.StatusServiceUnavailable)
		return
	}
	defer d.streams.Add(-1)

	rc := http.NewResponseController(w)
	// The server's timeouts bound whole requests; a stream lasts until the
	// client or the server ends it. Without this, the read deadline firing
	// under net/http's background read cancels the request, and the write
	// deadline cuts the stream. Each write sets its own deadline (flush).
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			http.Error(w, "event stream: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}

	// Subscribe before the snapshot: a change after it is then sent, and one
	// already in the snapshot compares equal and is skipped.
	sub := d.opts.Statuses.Subscribe()
	defer sub.Close()
	s := &stream{d: d, w: w, rc: rc}
	page := s.snapshot(d.opts.Statuses.Status())

	client := r.Header.Get("Last-Event-ID")
	if client == "" {
		client = r.URL.Query().Get("state")
	}
	s.buf.WriteString("retry: 2000\n\n")
	if client != page.State {
		if err := s.writeRefresh(page); err != nil {
			return
		}
	}
	if err := s.flush(); err != nil {
		return
	}

	beat := time.NewTicker(d.opts.Heartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-d.opts.Done:
			return
		case <-beat.C:
			s.buf.WriteString(": keep-alive\n\n")
			err = s.flush()
		case <-sub.Ready():
			err = s.changed(sub.Take())
		}
		if err != nil {
			d.opts.Logger.Debug("dashboard stream ended", "error", err)
			return
		}
	}
}

// stream is one client's connection and the page state it has.
type stream struct {
	d  *Dashboard
	w  io.Writer
	rc *http.ResponseController

	index  map[engine.EnvironmentKey]int
	repos  map[string][]engine.EnvironmentKey // configuration order
	hashes []uint64                           // what the client shows, by index
	rows   map[string][]string                // a repository's models, as shown
	mode   panels                             // of a refresh; fragments always fill their panel

	buf, frag bytes.Buffer
}

// snapshot makes statuses what the client is taken to show, and returns
// their page.
func (s *stream) snapshot(statuses []engine.Status) *pageView {
	s.mode = pagePanels(len(statuses))
	page := s.d.build(statuses, s.mode)
	s.index = make(map[engine.EnvironmentKey]int, len(statuses))
	s.repos = map[string][]engine.EnvironmentKey{}
	for i, st := range statuses {
		k := engine.EnvironmentKey{Repository: st.Repository, Environment: st.Environment}
		s.index[k] = i
		s.repos[k.Repository] = append(s.repos[k.Repository], k)
	}
	s.hashes = page.hashes
	s.rows = map[string][]string{}
	for i := range page.Repos {
		s.rows[page.Repos[i].Name] = page.Repos[i].models()
	}
	return page
}

// changed sends what keys changed, or a refresh when they are too many.
func (s *stream) changed(keys []engine.EnvironmentKey) error {
	if len(keys) > s.d.opts.MaxFragments {
		if err := s.writeRefresh(s.snapshot(s.d.opts.Statuses.Status())); err != nil {
			return err
		}
		return s.flush()
	}
	now := s.d.opts.Now()
	for len(keys) > 0 {
		repo := keys[0].Repository
		n := 1
		for n < len(keys) && keys[n].Repository == repo {
			n++
		}
		if err := s.repoChanged(repo, keys[:n], now); err != nil {
			return err
		}
		keys = keys[n:]
	}
	if s.buf.Len() == 0 {
		return nil
	}
	return s.flush()
}

// repoChanged writes the fragments of repo's changed environments: each
// one's, or the repository's section when its rows changed.
func (s *stream) repoChanged(repo string, keys []engine.EnvironmentKey, now time.Time) error {
	envs := s.repos[repo]
	statuses := make([]engine.Status, 0, len(envs))
	hashes := make([]uint64, len(envs))
	for i, k := range envs {
		st, ok := s.d.opts.Statuses.StatusOf(k)
		if !ok {
			// Environments come and go only with the configuration, which
			// a running engine does not change; resynchronise anyway.
			return s.writeRefresh(s.snapshot(s.d.opts.Statuses.Status()))
		}
		statuses = append(statuses, st)
		hashes[i] = envHash(st)
	}
	var changed []engine.EnvironmentKey
	for _, k := range keys {
		if i, ok := s.index[k]; ok && s.hashes[i] != hashes[slices.Index(envs, k)] {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	v := buildRepo(repo, statuses, now, panels{open: s.mode.open, tables: true})
	if models := v.models(); !slices.Equal(models, s.rows[repo]) {
		s.frag.Reset()
		if err := s.d.views.repo(&s.frag, &v); err != nil {
			return err
		}
		s.rows[repo] = models
		for i, k := range envs {
			s.hashes[s.index[k]] = hashes[i]
		}
		s.writeEvent("repo", s.frag.Bytes())
		return nil
	}
	for _, k := range changed {
		s.frag.Reset()
		if err := s.d.views.env(&s.frag, &v, k.Environment); err != nil {
			return err
		}
		s.hashes[s.index[k]] = hashes[slices.Index(envs, k)]
		s.writeEvent("env", s.frag.Bytes())
	}
	return nil
}

func (s *stream) writeRefresh(page *pageView) error {
	s.frag.Reset()
	if err := s.d.views.main(&s.frag, page); err != nil {
		return err
	}
	s.writeEvent("refresh", s.frag.Bytes())
	return nil
}

// eventLines splits data into SSE lines: any of \r\n, \r and \n ends one.
var eventLines = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// writeEvent appends one event to the batch, its id the state the client
// reaches with it.
func (s *stream) writeEvent(name string, data []byte) {
	s.buf.WriteString("event: " + name + "\nid: " + combine(s.hashes) + "\n")
	for line := range strings.SplitSeq(eventLines.Replace(string(data)), "\n") {
		s.buf.WriteString("data: ")
		s.buf.WriteString(line)
		s.buf.WriteByte('\n')
	}
	s.buf.WriteByte('\n')
}

// flush writes the batch within WriteTimeout.
func (s *stream) flush() error {
	defer s.reset()
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.d.opts.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil {
		return err
	}
	if err := s.rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// reset empties the batch, and lets a page-sized one go rather than keep it
// for the life of the stream.
func (s *stream) reset() {
	s.buf.Reset()
	if s.buf.Cap() > 256<<10 {
		s.buf = bytes.Buffer{}
	}
	if s.frag.Cap() > 256<<10 {
		s.frag = bytes.Buffer{}
	}
}
