package webhooks

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	secret    = []byte("current-secret-CANARY-5b1e")
	oldSecret = []byte("previous-secret-CANARY-9c2d")
)

// queue is a sink that records events and can be made full.
type queue struct {
	mu     sync.Mutex
	events []Event
	full   bool
}

func (q *queue) offer(ev Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.full {
		return false
	}
	q.events = append(q.events, ev)
	return true
}

func (q *queue) taken() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Event(nil), q.events...)
}

type fixture struct {
	h       *GitHub
	q       *queue
	logs    *bytes.Buffer
	metrics *prometheus.Registry
}

// newFixture builds a receiver tracking two repositories; tweaks change its
// options before it is built.
func newFixture(t testing.TB, tweaks ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{q: &queue{}, logs: &bytes.Buffer{}, metrics: prometheus.NewRegistry()}
	opts := Options{
		Secrets: [][]byte{secret, oldSecret},
		Repositories: []Repository{
			{Name: "ml-models", FullName: "acme/ml-models", Branch: "main"},
			{Name: "by-url", URLs: []string{"https://GitHub.com/Other/Vision.git"}, Branch: "main"},
		},
		Sink:       f.q.offer,
		Logger:     slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: f.metrics,
	}
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	h, err := NewGitHub(opts)
	require.NoError(t, err)
	f.h = h
	return f
}

type req struct {
	method, event, delivery, contentType string
	body                                 []byte
	headers                              map[string]string // set after signing; "" deletes
	// reader, when set, is sent instead of body, with no announced length
	// (chunked); the signature is still body's.
	reader io.Reader
}

// send signs the body with the current secret unless headers override it.
func (f *fixture) send(r req) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.delivery == "" {
		r.delivery = "d-" + strings.ReplaceAll(r.event, "_", "-") + "-" + hashHex(r.body)[:12]
	}
	hr := httptest.NewRequest(r.method, "/webhooks/github", bytes.NewReader(r.body))
	if r.reader != nil {
		hr = httptest.NewRequest(r.method, "/webhooks/github", r.reader)
		hr.ContentLength = -1
	}
	hr.Header.Set("X-GitHub-Event", r.event)
	hr.Header.Set("X-GitHub-Delivery", r.delivery)
	hr.Header.Set("Content-Type", "application/json")
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	hr.Header.Set("X-Hub-Signature-256", Sign(secret, r.body))
	for k, v := range r.headers {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, hr)
	return rec
}

func hashHex(b []byte) string { return strings.TrimPrefix(Sign([]byte("id"), b), "sha256=") }

func payload(t testing.TB, name string, edits ...string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		require.Contains(t, s, edits[i], "fixture edit")
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return []byte(s)
}

func TestEvents(t *testing.T) {
	cases := []struct {
		name     string
		event    string
		body     func(t testing.TB) []byte
		status   int
		answer   string
		enqueued int
	}{
		{"ping answers pong and enqueues nothing", "ping", func(t testing.TB) []byte { return payload(t, "ping.json") }, 200, "pong", 0},
		{"a push to the tracked branch is enqueued", "push", func(t testing.TB) []byte { return payload(t, "push.json") }, 202, "accepted", 1},
		{"a push to another branch is ignored", "push", func(t testing.TB) []byte {
			return payload(t, "push.json", `"ref": "refs/heads/main"`, `"ref": "refs/heads/feature"`)
		}, 202, "ignored: untracked branch", 0},
		{"a push to an untracked repository is ignored", "push", func(t testing.TB) []byte {
			return payload(t, "push.json", `"full_name": "acme/ml-models"`, `"full_name": "acme/other"`,
				`"clone_url": "https://github.com/acme/ml-models.git"`, `"clone_url": "https://github.com/acme/other.git"`)
		}, 202, "ignored: untracked repository", 0},
		{"a tag push is ignored", "push", func(t testing.TB) []byte {
			return payload(t, "push.json", `"ref": "refs/heads/main"`, `"ref": "refs/tags/v1.0.0"`)
		}, 202, "ignored: not a branch push", 0},
		{"a branch deletion is ignored", "push", func(t testing.TB) []byte {
			return payload(t, "push.json", `"deleted": false`, `"deleted": true`)
		}, 202, "ignored: branch deleted", 0},
		{"a repository is matched by clone URL, case-insensitively", "push", func(t testing.TB) []byte {
			return payload(t, "push.json", `"full_name": "acme/ml-models"`, `"full_name": "other/vision"`,
				`"clone_url": "https://github.com/acme/ml-models.git"`, `"clone_url": "https://github.com/other/vision.git"`)
		}, 202, "accepted", 1},
		{"an opened pull request is enqueued for a preview", "pull_request", func(t testing.TB) []byte { return payload(t, "pull_request.json") }, 202, "accepted", 1},
		{"a synchronized pull request is enqueued", "pull_request", func(t testing.TB) []byte {
			return payload(t, "pull_request.json", `"action": "opened"`, `"action": "synchronize"`)
		}, 202, "accepted", 1},
		{"a reopened pull request is enqueued", "pull_request", func(t testing.TB) []byte {
			return payload(t, "pull_request.json", `"action": "opened"`, `"action": "reopened"`)
		}, 202, "accepted", 1},
		{"a merged pull request is enqueued as merged", "pull_request", func(t testing.TB) []byte {
			return payload(t, "pull_request.json", `"action": "opened"`, `"action": "closed"`, `"merged": false`, `"merged": true`)
		}, 202, "accepted", 1},
		{"a pull request ready for review is enqueued", "pull_request", func(t testing.TB) []byte {
			return payload(t, "pull_request.json", `"action": "opened"`, `"action": "ready_for_review"`)
		}, 202, "accepted", 1},
		{"a pull request closed unmerged is enqueued, to cancel its preview", "pull_request", func(t testing.TB) []byte {
			return payload(t, "pull_request.json", `"action": "opened"`, `"action": "closed"`)
		}, 202, "accepted", 1},
		{"a labelled pull request is ignored", "pull_request", func(t testing.TB) []byte {
			return payload(t, "pull_request.json", `"action": "opened"`, `"action": "labeled"`)
		}, 202, "ignored: pull request action labeled", 0},
		{"another event is ignored", "issues", func(t testing.TB) []byte { return []byte(`{"action":"opened"}`) }, 202, "ignored: event not used by ferry", 0},
		{"a signed body that is not JSON is a bad request", "push", func(t testing.TB) []byte { return []byte("{not json") }, 400, "bad payload", 0},
		{"a signed push without a repository is a bad request", "push", func(t testing.TB) []byte { return []byte(`{"ref":"refs/heads/main"}`) }, 400, "repository.full_name", 0},
		{"a signed pull request without its pull_request is a bad request", "pull_request", func(t testing.TB) []byte {
			return []byte(`{"action":"opened","repository":{"full_name":"acme/ml-models"}}`)
		}, 400, "bad payload", 0},
		{"a signed JSON array is a bad request", "push", func(t testing.TB) []byte { return []byte(`[1,2,3]`) }, 400, "bad payload", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.send(req{event: tc.event, body: tc.body(t)})
			assert.Equal(t, tc.status, rec.Code)
			assert.Contains(t, rec.Body.String(), tc.answer)
			assert.Len(t, f.q.taken(), tc.enqueued)
			assert.Contains(t, f.logs.String(), "outcome=", "every request is logged")
		})
	}
}

func TestAPushEventCarriesWhatTheEngineNeeds(t *testing.T) {
	f := newFixture(t)
	rec := f.send(req{event: "push", delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958", body: payload(t, "push.json")})
	require.Equal(t, http.StatusAccepted, rec.Code)
	events := f.q.taken()
	require.Len(t, events, 1)
	ev := events[0]
	assert.Equal(t, KindPush, ev.Kind)
	assert.Equal(t, "72d3162e-cc78-11e3-81ab-4c9367dc0958", ev.Delivery)
	assert.Equal(t, "ml-models", ev.Repository)
	assert.Equal(t, "acme/ml-models", ev.FullName)
	assert.Equal(t, &Push{
		Ref: "refs/heads/main", Branch: "main",
		Before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		After:  "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
		Paths:  []string{"environments/dev/models.yaml", "models/fraud-detector/README.md"},
	}, ev.Push)
}

func TestAMergedPullRequestEventSaysSo(t *testing.T) {
	f := newFixture(t)
	f.send(req{event: "pull_request", body: payload(t, "pull_request.json", `"action": "opened"`, `"action": "closed"`, `"merged": false`, `"merged": true`)})
	events := f.q.taken()
	require.Len(t, events, 1)
	assert.Equal(t, &PullRequest{
		Number: 42, Action: "closed", Merged: true,
		HeadRef: "ferry/promote/fraud-detector/staging", HeadSHA: "7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c",
		BaseRef: "main", BaseSHA: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
		HeadRepoFullName: "acme/ml-models",
	}, events[0].PullRequest)
}

func TestRejections(t *testing.T) {
	body := payload(t, "push.json")
	cases := []struct {
		name    string
		r       req
		status  int
		headers map[string]string
	}{
		{"no signature", req{headers: map[string]string{"X-Hub-Signature-256": ""}}, 401, nil},
		{"a malformed signature", req{headers: map[string]string{"X-Hub-Signature-256": "sha256=zz"}}, 401, nil},
		{"a sha1 signature in the new header", req{headers: map[string]string{"X-Hub-Signature-256": "sha1=" + strings.Repeat("a", 40)}}, 401, nil},
		{"only the old X-Hub-Signature header", req{headers: map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": "sha1=" + strings.Repeat("a", 40)}}, 401, nil},
		{"a signature made with another secret", req{headers: map[string]string{"X-Hub-Signature-256": Sign([]byte("guess"), body)}}, 401, nil},
		{"a signature of another body", req{headers: map[string]string{"X-Hub-Signature-256": Sign(secret, []byte("{}"))}}, 401, nil},
		{"a GET", req{method: http.MethodGet}, 405, map[string]string{"Allow": "POST"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.r.event, tc.r.body = "push", body
			rec := f.send(tc.r)
			assert.Equal(t, tc.status, rec.Code)
			assert.Empty(t, f.q.taken())
			assert.LessOrEqual(t, rec.Body.Len(), 32, "a short answer with nothing that helps an attacker")
			for k, v := range tc.headers {
				assert.Equal(t, v, rec.Header().Get(k))
			}
		})
	}
}

func TestBothSecretsWorkDuringARotation(t *testing.T) {
	f := newFixture(t)
	body := payload(t, "push.json")
	assert.Equal(t, 202, f.send(req{event: "push", delivery: "a", body: body}).Code)
	assert.Equal(t, 202, f.send(req{event: "push", delivery: "b", body: body, headers: map[string]string{"X-Hub-Signature-256": Sign(oldSecret, body)}}).Code)
	assert.Equal(t, 401, f.send(req{event: "push", delivery: "c", body: body, headers: map[string]string{"X-Hub-Signature-256": Sign([]byte("retired"), body)}}).Code)
	assert.Len(t, f.q.taken(), 2)
}

func TestARedeliveryIsADuplicate(t *testing.T) {
	f := newFixture(t)
	body := payload(t, "push.json")
	first := f.send(req{event: "push", delivery: "same-id", body: body})
	again := f.send(req{event: "push", delivery: "same-id", body: body})
	assert.Equal(t, 202, first.Code)
	assert.Equal(t, 200, again.Code)
	assert.Equal(t, "duplicate\n", again.Body.String())
	assert.Len(t, f.q.taken(), 1)
}

func TestAFullQueueAnswers503AndTheRedeliveryIsAccepted(t *testing.T) {
	f := newFixture(t)
	body := payload(t, "push.json")
	f.q.full = true
	rec := f.send(req{event: "push", delivery: "busy", body: body})
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	assert.Equal(t, 1.0, testutil.ToFloat64(f.h.requests.WithLabelValues("push", outcomeUnavailable)))

	f.q.full = false
	assert.Equal(t, 202, f.send(req{event: "push", delivery: "busy", body: body}).Code, "a delivery not acted on is not a duplicate")
	assert.Len(t, f.q.taken(), 1)
}

func TestOversizedBodiesAre413WithoutBeingRead(t *testing.T) {
	t.Run("a body one byte over the cap", func(t *testing.T) {
		f := newFixture(t)
		big := bytes.Repeat([]byte("a"), DefaultMaxBodyBytes+1)
		rec := f.send(req{event: "push", body: big})
		assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
		assert.Empty(t, f.q.taken())
	})
	t.Run("a body that never ends", func(t *testing.T) {
		f := newFixture(t)
		endless := &countingReader{}
		hr := httptest.NewRequest(http.MethodPost, "/webhooks/github", endless)
		hr.ContentLength = -1 // chunked: the size is not announced
		hr.Header.Set("X-GitHub-Event", "push")
		hr.Header.Set("X-Hub-Signature-256", Sign(secret, nil))
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, hr)
		assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
		assert.LessOrEqual(t, endless.n, int64(DefaultMaxBodyBytes+64<<10), "read no further than the limit")
	})
}

type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestAFormEncodedPayloadIsAccepted(t *testing.T) {
	f := newFixture(t)
	body := []byte("payload=" + urlQueryEscape(string(payload(t, "push.json"))))
	rec := f.send(req{event: "push", body: body, contentType: "application/x-www-form-urlencoded"})
	assert.Equal(t, 202, rec.Code, rec.Body.String())
	assert.Len(t, f.q.taken(), 1)
}

func TestMetricsCountRequestsByEventAndOutcome(t *testing.T) {
	f := newFixture(t)
	f.send(req{event: "push", body: payload(t, "push.json")})
	f.send(req{event: "push", body: []byte("{}"), headers: map[string]string{"X-Hub-Signature-256": ""}})
	f.send(req{event: "something-attacker-chosen", body: []byte("{}"), headers: map[string]string{"X-Hub-Signature-256": ""}})
	assert.Equal(t, 1.0, testutil.ToFloat64(f.h.requests.WithLabelValues("push", outcomeAccepted)))
	assert.Equal(t, 1.0, testutil.ToFloat64(f.h.requests.WithLabelValues("push", outcomeUnauthorized)))
	assert.Equal(t, 1.0, testutil.ToFloat64(f.h.requests.WithLabelValues("other", outcomeUnauthorized)), "attacker-chosen event names collapse into one label")
	n, err := testutil.GatherAndCount(f.metrics, "ferry_webhook_request_duration_seconds")
	require.NoError(t, err)
	assert.Positive(t, n)
}

func TestSecretsNeverAppearInAnswersOrLogs(t *testing.T) {
	f := newFixture(t)
	body := payload(t, "push.json")
	var answers strings.Builder
	for _, r := range []req{
		{event: "push", body: body},
		{event: "push", body: body, headers: map[string]string{"X-Hub-Signature-256": Sign([]byte("wrong"), body)}},
		{event: "push", body: []byte("{bad")},
		{event: "ping", body: payload(t, "ping.json")},
	} {
		rec := f.send(r)
		answers.WriteString(rec.Body.String())
		for k, v := range rec.Header() {
			answers.WriteString(k + strings.Join(v, ""))
		}
	}
	for _, s := range [][]byte{secret, oldSecret} {
		assert.NotContains(t, answers.String(), string(s))
		assert.NotContains(t, f.logs.String(), string(s))
	}
}

func TestNewRefusesMissingSecretsAndSink(t *testing.T) {
	sink := func(Event) bool { return true }
	_, err := NewGitHub(Options{Sink: sink})
	assert.ErrorContains(t, err, "no secret")
	_, err = NewGitHub(Options{Secrets: [][]byte{{}}, Sink: sink})
	assert.ErrorContains(t, err, "empty")
	_, err = NewGitHub(Options{Secrets: [][]byte{secret}})
	assert.ErrorContains(t, err, "sink")
}

func TestDeliveryMemoryIsBounded(t *testing.T) {
	d := newDeliveries(3)
	for _, id := range []string{"a", "b", "c", "d"} {
		assert.True(t, d.claim(id))
	}
	assert.True(t, d.claim("a"), "the oldest id was forgotten")
	assert.False(t, d.claim("d"))
	assert.LessOrEqual(t, len(d.ids), 3)
}

var _ io.Reader = (*countingReader)(nil)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
