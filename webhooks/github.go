package webhooks

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Repository is a repository Ferry tracks, as the receiver matches it.
type Repository struct {
	// Name is Ferry's name for it (ferry.yaml repositories[].name).
	Name string
	// FullName is GitHub's owner/name; URLs are its clone URLs. A payload
	// matches on either, case-insensitively.
	FullName string
	URLs     []string
	// Branch is the tracked branch; pushes to others are ignored.
	Branch string
}

// Options configures NewGitHub.
type Options struct {
	// Secrets verify X-Hub-Signature-256. Give the new and the old secret
	// during a rotation; at least one is required and none may be empty.
	Secrets [][]byte
	// MaxBodyBytes caps a request body; 0 means DefaultMaxBodyBytes. A body
	// over it is answered 413 without being read past the cap.
	MaxBodyBytes int64
	// MaxConcurrentBodies is how many bodies are read at once before their
	// signatures are checked; 0 means DefaultMaxConcurrentBodies. A request
	// that finds them all taken is answered 503 at once, so unauthenticated
	// memory stays under MaxConcurrentBodies × MaxBodyBytes.
	MaxConcurrentBodies int
	// Repositories are the ones Ferry tracks.
	Repositories []Repository
	// Sink receives each accepted event. It must not block: it returns false
	// when it cannot take the event (a full queue), and the receiver answers
	// 503 so that GitHub's redelivery, or a person, tries again.
	Sink func(Event) bool
	// DeliveryMemory is how many delivery ids are remembered to drop
	// redeliveries; 0 means 10,000.
	DeliveryMemory int
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Registerer, when set, receives the receiver's metrics.
	Registerer prometheus.Registerer
}

// GitHub is the receiver for GitHub webhooks. Its ServeHTTP authenticates,
// parses, hands the event to the sink and answers; it never calls Git,
// Kubernetes or GitHub.
//
// The same push delivered under two delivery ids passes the redelivery check
// twice; the engine's queue coalesces work by repository, so it still causes
// one reconcile.
type GitHub struct {
	secrets  [][]byte
	maxBody  int64
	bodies   slots
	repos    []Repository
	sink     func(Event) bool
	seen     *deliveries
	log      *slog.Logger
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewGitHub returns a receiver. It refuses options without a usable secret or sink.
func NewGitHub(opts Options) (*GitHub, error) {
	if len(opts.Secrets) == 0 {
		return nil, errors.New("webhooks: no secret: set the webhook secret (ferry.yaml webhook.secretEnv) or turn webhooks off")
	}
	for i, s := range opts.Secrets {
		if len(s) == 0 {
			return nil, fmt.Errorf("webhooks: secret %d is empty", i)
		}
	}
	if opts.Sink == nil {
		return nil, errors.New("webhooks: no sink for events")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxConcurrentBodies <= 0 {
		opts.MaxConcurrentBodies = DefaultMaxConcurrentBodies
	}
	if opts.DeliveryMemory <= 0 {
		opts.DeliveryMemory = 10_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &GitHub{
		secrets: opts.Secrets,
		maxBody: opts.MaxBodyBytes,
		bodies:  newSlots(opts.MaxConcurrentBodies),
		repos:   opts.Repositories,
		sink:    opts.Sink,
		seen:    newDeliveries(opts.DeliveryMemory),
		log:     opts.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_webhook_requests_total",
			Help: "Webhook requests by event and outcome.",
		}, []string{"event", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_webhook_request_duration_seconds",
			Help:    "Time from a webhook request's arrival to its answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"event"}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{h.requests, h.latency} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("webhooks: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Outcomes, as the metric and the log name them.
const (
	outcomeAccepted     = "accepted"
	outcomeIgnored      = "ignored"
	outcomeDuplicate    = "duplicate"
	outcomePong         = "pong"
	outcomeUnauthorized = "unauthorized"
	outcomeTooLarge     = "too_large"
	outcomeBadRequest   = "bad_request"
	outcomeMethod       = "method_not_allowed"
	outcomeUnavailable  = "unavailable"
	outcomeOverloaded   = "overloaded"
)

// answer is what a request gets: the outcome label, the status and a one-line body.
type answer struct {
	outcome string
	status  int
	msg     string
}

func (h *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event := eventLabel(r.Header.Get("X-GitHub-Event"))
	a, delivery := h.handle(w, r)
	if a.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(a.status)
	io.WriteString(w, a.msg+"\n")

	h.requests.WithLabelValues(event, a.outcome).Inc()
	h.latency.WithLabelValues(event).Observe(time.Since(start).Seconds())
	level := slog.LevelInfo
	if a.status == http.StatusUnauthorized || a.status >= 500 {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "webhook", "event", event, "outcome", a.outcome, "status", a.status, "reason", a.msg, "delivery", delivery)
}

// handle decides the answer. Authentication comes before any parsing. The
// delivery id is returned only once the request is authenticated: before
// that it is whatever a stranger sent, and is not logged.
func (h *GitHub) handle(w http.ResponseWriter, r *http.Request) (a answer, delivery string) {
	body, a, ok := h.authenticate(w, r)
	if !ok {
		return a, ""
	}

	// Authenticated from here on.
	delivery = r.Header.Get("X-GitHub-Delivery")
	if !h.seen.claim(delivery) {
		return answer{outcomeDuplicate, http.StatusOK, "duplicate"}, delivery
	}
	payload, err := jsonPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		h.seen.release(delivery)
		return answer{outcomeBadRequest, http.StatusBadRequest, err.Error()}, delivery
	}

	var parse func([]byte) (*Event, ignored, error)
	switch r.Header.Get("X-GitHub-Event") {
	case "ping":
		return answer{outcomePong, http.StatusOK, "pong"}, delivery
	case "push":
		parse = h.parsePush
	case "pull_request":
		parse = h.parsePullRequest
	case "check_run":
		parse = h.parseCheckRun
	case "check_suite":
		parse = h.parseCheckSuite
	case "status":
		parse = h.parseStatus
	default:
		return answer{outcomeIgnored, http.StatusAccepted, "ignored: event not used by ferry"}, delivery
	}
	ev, why, err := parse(payload)
	if err != nil {
		h.seen.release(delivery) // a fixed redelivery must not be dropped
		return answer{outcomeBadRequest, http.StatusBadRequest, err.Error()}, delivery
	}
	if ev == nil {
		return answer{outcomeIgnored, http.StatusAccepted, "ignored: " + string(why)}, delivery
	}
	ev.Delivery = delivery
	if !h.sink(*ev) {
		h.seen.release(delivery)
		return answer{outcomeUnavailable, http.StatusServiceUnavailable, "busy: retry later"}, delivery
	}
	return answer{outcomeAccepted, http.StatusAccepted, "accepted"}, delivery
}

// authenticate reads the body and checks its signature, or says why not.
// What needs no body is refused before a byte of it is read: a method other
// than POST, a missing or malformed signature, an announced length over the
// cap, and every body slot being taken. The body is read only while holding
// a slot, and the slot is given back once the signature is checked, on every
// path, a panic or a client gone mid-body included.
func (h *GitHub) authenticate(w http.ResponseWriter, r *http.Request) (body []byte, refused answer, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, unread(w, answer{outcomeMethod, http.StatusMethodNotAllowed, "method not allowed"}), false
	}
	mac, ok := parseSignature(r.Header.Get(signatureHeader))
	if !ok {
		return nil, unread(w, answer{outcomeUnauthorized, http.StatusUnauthorized, "unauthorized"}), false
	}
	if r.ContentLength > h.maxBody {
		return nil, unread(w, answer{outcomeTooLarge, http.StatusRequestEntityTooLarge, "payload too large"}), false
	}
	if !h.bodies.tryAcquire() {
		return nil, unread(w, answer{outcomeOverloaded, http.StatusServiceUnavailable, "overloaded: retry later"}), false
	}
	defer h.bodies.release()
	pieces, err := readBody(http.MaxBytesReader(w, r.Body, h.maxBody), r.ContentLength)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, answer{outcomeTooLarge, http.StatusRequestEntityTooLarge, "payload too large"}, false
		}
		return nil, answer{outcomeBadRequest, http.StatusBadRequest, "could not read body"}, false
	}
	if !verify(h.secrets, pieces, mac) {
		return nil, answer{outcomeUnauthorized, http.StatusUnauthorized, "unauthorized"}, false
	}
	return join(pieces), answer{}, true
}

// unread marks an answer given without reading the body: the connection is
// closed after it, rather than kept alive by the server draining up to
// 256 KiB of a stranger's body first.
func unread(w http.ResponseWriter, a answer) answer {
	w.Header().Set("Connection", "close")
	return a
}

// jsonPayload returns the JSON of a body sent as application/json or, as
// GitHub can be configured to, as a form with a payload field.
func jsonPayload(contentType string, body []byte) ([]byte, error) {
	if !strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || !form.Has("payload") {
		return nil, fmt.Errorf("%w: form body without a payload field", errBadPayload)
	}
	return []byte(form.Get("payload")), nil
}

// match finds the tracked repository a payload names, by full name or by any
// of its URLs, case-insensitively.
func (h *GitHub) match(fullName string, urls ...string) (Repository, bool) {
	for _, repo := range h.repos {
		if repo.FullName != "" && strings.EqualFold(repo.FullName, fullName) {
			return repo, true
		}
		for _, want := range repo.URLs {
			for _, got := range urls {
				if got != "" && normalizeURL(want) == normalizeURL(got) {
					return repo, true
				}
			}
		}
	}
	return Repository{}, false
}

func normalizeURL(u string) string {
	u = strings.ToLower(strings.TrimRight(u, "/"))
	return strings.TrimSuffix(u, ".git")
}

// eventLabel bounds the metric's event label: the header is attacker-chosen
// until the signature is checked.
func eventLabel(event string) string {
	switch event {
	case "push", "pull_request", "ping", "check_run", "check_suite", "status":
		return event
	case "":
		return "none"
	default:
		return "other"
	}
}
