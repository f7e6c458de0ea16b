package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"sync/atomic"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
)

// Statuses is what the dashboard reads: the engine (through FromEngine) or a
// test's statuses. Status returns every environment in configuration order;
// the set of environments never changes while the dashboard runs.
type Statuses interface {
	Status() []engine.Status
	StatusOf(engine.EnvironmentKey) (engine.Status, bool)
	Subscribe() Changes
}

// Changes follows status changes as engine.Subscription does: Ready is
// signalled after a change, Take returns the environments changed since the
// last Take (coalesced, never dropped), Close ends it.
type Changes interface {
	Ready() <-chan struct{}
	Take() []engine.EnvironmentKey
	Close()
}

var _ Changes = (*engine.Subscription)(nil)

// FromEngine adapts the engine to Statuses.
func FromEngine(e *engine.Engine) Statuses { return engineStatuses{e} }

type engineStatuses struct{ *engine.Engine }

func (e engineStatuses) Subscribe() Changes { return e.Engine.Subscribe() }

// Defaults of Options.
const (
	DefaultMaxFragments = 32
	DefaultMaxStreams   = 64
	DefaultWriteTimeout = 10 * time.Second
	DefaultHeartbeat    = 20 * time.Second
)

// Options configures a Dashboard. Statuses is required; the rest has usable
// zero values.
type Options struct {
	// Statuses is what the page shows: FromEngine(eng), or a test's.
	Statuses Statuses
	// Done ends every event stream when closed. cmd/ferry passes its
	// context's Done, closed before the listeners shut down:
	// http.Server.Shutdown waits for handlers, and a stream never returns
	// on its own. nil: streams end only with their clients.
	Done <-chan struct{}
	// Logger gets an Error when a page cannot be rendered and a Debug line
	// when a stream ends on a failed write; nil discards.
	Logger *slog.Logger
	// MaxFragments is how many environments may have changed since a
	// stream last wrote before it sends one refresh (the whole page body)
	// instead of a fragment each; 0 means DefaultMaxFragments.
	MaxFragments int
	// MaxStreams caps concurrent event streams; more are refused with 503.
	// 0 means DefaultMaxStreams.
	MaxStreams int
	// WriteTimeout bounds each write to a stream; a client that takes
	// longer is disconnected (its browser reconnects and catches up).
	// It replaces the server's WriteTimeout for streams. 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Heartbeat is the interval of the comment that keeps an idle stream
	// (and proxies) alive and finds dead clients; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// Now is the clock for "how long ago"; nil means time.Now.
	Now func() time.Time
}

// Dashboard is the http.Handler of the page (GET /), its event stream
// (GET /events), one environment's fragment (GET /fragment) and its assets
// (GET /assets/…). Mount it at "/" on the admin listener.
type Dashboard struct {
	opts    Options
	mux     *http.ServeMux
	views   *renderer
	assets  map[string]asset
	streams atomic.Int64
}

//go:embed assets
var embedded embed.FS

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New validates opts and returns the dashboard.
func New(opts Options) (*Dashboard, error) {
	if opts.Statuses == nil {
		return nil, errors.New("dashboard: no statuses to show")
	}
	if opts.MaxFragments <= 0 {
		opts.MaxFragments = DefaultMaxFragments
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	views, err := newRenderer()
	if err != nil {
		return nil, err
	}
	d := &Dashboard{opts: opts, views: views, assets: map[string]asset{}}
	err = fs.WalkDir(embedded, "assets", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
		d.assets["/"+p] = asset{body: b, contentType: types[path.Ext(p)], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.mux = http.NewServeMux()
	d.mux.HandleFunc("GET /{$}", d.page)
	d.mux.HandleFunc("GET /events", d.events)
	d.mux.HandleFunc("GET /fragment", d.fragment)
	d.mux.HandleFunc("GET /assets/{name}", d.asset)
	return d, nil
}

// ServeHTTP serves the page, the event stream and the assets; anything else
// is 404.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The page loads only its own assets and talks only to its own origin;
	// a name or error that slipped past escaping still could not run.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// Promotion links lead to GitHub; the admin address stays here.
	h.Set("Referrer-Policy", "no-referrer")
	d.mux.ServeHTTP(w, r)
}

// page renders the whole page from one snapshot of every status; with
// ?repo=R&env=E, that environment's history panel is open and filled.
func (d *Dashboard) page(w http.ResponseWriter, r *http.Request) {
	statuses := d.opts.Statuses.Status()
	mode := pagePanels(len(statuses))
	mode.expand = engine.EnvironmentKey{Repository: r.URL.Query().Get("repo"), Environment: r.URL.Query().Get("env")}
	var buf bytes.Buffer
	if err := d.views.page(&buf, d.build(statuses, mode)); err != nil {
		d.opts.Logger.Error("dashboard render failed", "error", err)
		http.Error(w, "render dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

func (d *Dashboard) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := d.assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// fragment serves one environment's fragment (?repo=R&env=E), its history
// table included: the script loads a closed panel's table with it.
func (d *Dashboard) fragment(w http.ResponseWriter, r *http.Request) {
	repo, env := r.URL.Query().Get("repo"), r.URL.Query().Get("env")
	var statuses []engine.Status
	for _, s := range d.opts.Statuses.Status() {
		if s.Repository == repo {
			statuses = append(statuses, s)
		}
	}
	v := buildRepo(repo, statuses, d.opts.Now(), panels{tables: true})
	var buf bytes.Buffer
	if err := d.views.env(&buf, &v, env); err != nil {
		http.Error(w, "no environment "+env+" in repository "+repo, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// build is the view of statuses at the dashboard's clock.
func (d *Dashboard) build(statuses []engine.Status, mode panels) *pageView {
	return buildPage(statuses, d.opts.Now(), mode)
}
