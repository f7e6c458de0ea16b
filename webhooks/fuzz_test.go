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
// and must never enqueue anything for an unsigned body.
// Longer runs: go test ./webhooks -run '^$' -fuzz FuzzGitHubHandler -fuzztime 5m
func FuzzGitHubHandler(f *testing.F) {
	for _, name := range []string{"push.json", "pull_request.json", "ping.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		event := map[string]string{"push.json": "push", "pull_request.json": "pull_request", "ping.json": "ping"}[name]
		f.Add(event, b, true, "application/json", "")
		f.Add(event, b, false, "application/json", "sha256=00")
	}
	f.Add("push", []byte(`{"ref":null,"repository":{"full_name":123}}`), true, "application/json", "")
	f.Add("pull_request", []byte(`{"action":"closed","pull_request":{"merged":"yes"}}`), true, "application/x-www-form-urlencoded", "")
	f.Add("push", []byte("payload=%7B%7D"), true, "application/x-www-form-urlencoded", "")

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
		if !signed && signature != Sign(secret, body) && len(q.taken()) > 0 {
			t.Fatalf("an unsigned body was enqueued (status %d)", rec.Code)
		}
	})
}

func readFixture(name string) ([]byte, error) { return os.ReadFile("testdata/" + name) }
