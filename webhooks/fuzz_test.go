package webhooks

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// FuzzGitHubHandler feeds arbitrary bodies and headers, signed and unsigned.
// The handler must never panic, must answer with one of its known statuses,
// must never enqueue anything for an unsigned body, and every event it
// enqueues carries the part its Kind names (with a commit id where one is
// required) and nothing else.
// Longer runs: go test ./webhooks -run '^$' -fuzz FuzzGitHubHandler -fuzztime 5m
func FuzzGitHubHandler(f *testing.F) {
	for event, name := range map[string]string{
		"push": "push.json", "pull_request": "pull_request.json", "ping": "ping.json",
		"check_run": "check_run.json", "check_suite": "check_suite.json", "status": "status.json",
	} {
		b, err := readFixture(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(event, b, true, "application/json", "")
		f.Add(event, b, false, "application/json", "sha256=00")
	}
	f.Add("push", []byte(`{"ref":null,"repository":{"full_name":123}}`), true, "application/json", "")
	f.Add("pull_request", []byte(`{"action":"closed","pull_request":{"merged":"yes"}}`), true, "application/x-www-form-urlencoded", "")
	f.Add("push", []byte("payload=%7B%7D"), true, "application/x-www-form-urlencoded", "")
	f.Add("check_run", []byte(`{"action":"completed","check_run":{"head_sha":null},"repository":{"full_name":"acme/ml-models"}}`), true, "application/json", "")
	f.Add("status", []byte(`{"sha":"7a1e3c0b1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c","repository":{"full_name":"ACME/ML-MODELS"}}`), true, "application/json", "")

	f.Fuzz(func(t *testing.T, event string, body []byte, signed bool, contentType, signature string) {
		q := &queue{}
		h, err := NewGitHub(Options{
			Secrets:      [][]byte{secret},
			Repositories: []Repository{{Name: "ml-models", FullName: "acme/ml-models", Branch: "main"}},
			Sink:         q.offer,
			MaxBodyBytes: 1 << 20,
		})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/webhooks/github", bytes.NewReader(body))
		r.Header.Set("X-GitHub-Event", event)
		r.Header.Set("X-GitHub-Delivery", "fuzz")
		r.Header.Set("Content-Type", contentType)
		if signed {
			signature = Sign(secret, body)
		}
		r.Header.Set("X-Hub-Signature-256", signature)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)

		switch rec.Code {
		case 200, 202, 400, 401, 413, 503:
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
		if h.bodies.inUse() != 0 {
			t.Fatalf("a body slot was kept (status %d)", rec.Code)
		}
		if !signed && signature != Sign(secret, body) && len(q.taken()) > 0 {
			t.Fatalf("an unsigned body was enqueued (status %d)", rec.Code)
		}
		for _, ev := range q.taken() {
			if ev.Repository != "ml-models" {
				t.Fatalf("an event for an untracked repository %q was enqueued", ev.FullName)
			}
			parts := 0
			for _, set := range []bool{ev.Push != nil, ev.PullRequest != nil, ev.Checks != nil} {
				if set {
					parts++
				}
			}
			ok := parts == 1 && map[Kind]bool{
				KindPush:        ev.Push != nil,
				KindPullRequest: ev.PullRequest != nil && isSHA(ev.PullRequest.HeadSHA),
				KindChecks:      ev.Checks != nil && isSHA(ev.Checks.SHA),
			}[ev.Kind]
			if !ok {
				t.Fatalf("an event of kind %q does not carry what its kind needs: %+v", ev.Kind, ev)
			}
		}
	})
}

func readFixture(name string) ([]byte, error) { return os.ReadFile("testdata/" + name) }
