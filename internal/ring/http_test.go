package ring

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/httpserver"
)

const testToken = "s3cret-ring-token"

// notes records what a Handler's notify func received.
type notes struct {
	mu   sync.Mutex
	got  []string
	full bool
}

func (n *notes) notify(note Notification) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.full {
		return false
	}
	got := note.Repository + " " + note.Kind
	if note.Payload != nil {
		got += " " + string(note.Payload)
	}
	n.got = append(n.got, got)
	return true
}

func (n *notes) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got
}

func TestHandlerServesOnlyMembersWithTheToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		token      string // the handler's; "" means testToken
		method     string
		path       string
		auth       string
		body       string
		full       bool
		noStatus   bool
		wantStatus int
		wantNotes  []string
		wantBody   string
	}{
		{name: "a notification without a token is refused", method: "POST", path: NotifyPath,
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "a notification signed with a wrong token is refused", method: "POST", path: NotifyPath, auth: "wrong",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "the token itself, sent as a bearer token, is refused", method: "POST", path: NotifyPath, auth: "bearer",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "a signature older than MaxSkew is refused", method: "POST", path: NotifyPath, auth: "stale",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "a signature from further in the future than MaxSkew is refused", method: "POST", path: NotifyPath, auth: "future",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "a signature of another body is refused", method: "POST", path: NotifyPath, auth: "tampered",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "a signature made for the status endpoint does not open the notify endpoint", method: "POST", path: NotifyPath, auth: "other path",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "a notification signed for another member is refused", method: "POST", path: NotifyPath, auth: "another member",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 401},
		{name: "a status request signed for another member is refused", method: "GET", path: StatusPath, auth: "another member", wantStatus: 401},
		{name: "a status request without a token is refused", method: "GET", path: StatusPath, wantStatus: 401},
		{name: "a handler without a token refuses everyone", token: "-", method: "GET", path: StatusPath, auth: "empty", wantStatus: 401},
		{name: "a notification calls notify and is accepted", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"repository":"models","kind":"push"}`, wantStatus: 202, wantNotes: []string{"models push"}},
		{name: "a checks notification with fields it does not know is accepted", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"repository":"models","kind":"checks","sha":"abc"}`, wantStatus: 202, wantNotes: []string{"models checks"}},
		{name: "a notification the queue cannot take is answered 503", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"repository":"models","kind":"push"}`, full: true, wantStatus: 503},
		{name: "a pull request notification carries its payload to notify", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"repository":"models","kind":"pull_request","payload":{"number":7}}`, wantStatus: 202, wantNotes: []string{`models pull_request {"number":7}`}},
		{name: "a pull request notification without its payload is a bad request", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"repository":"models","kind":"pull_request"}`, wantStatus: 400},
		{name: "a notification of an unknown kind is a bad request", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"repository":"models","kind":"release"}`, wantStatus: 400},
		{name: "a notification without a repository is a bad request", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"kind":"push"}`, wantStatus: 400},
		{name: "a notification that is not JSON is a bad request", method: "POST", path: NotifyPath, auth: "signed",
			body: `repository=models`, wantStatus: 400},
		{name: "a notification over the body cap is refused", method: "POST", path: NotifyPath, auth: "signed",
			body: `{"repository":"` + strings.Repeat("m", MaxNotifyBytes) + `","kind":"push"}`, wantStatus: 413},
		{name: "status returns the bytes of the status func", method: "GET", path: StatusPath, auth: "signed",
			wantStatus: 200, wantBody: `{"environments":[]}`},
		{name: "a member without a status func answers 501", method: "GET", path: StatusPath, auth: "signed",
			noStatus: true, wantStatus: 501},
		{name: "a notification by GET is not allowed", method: "GET", path: NotifyPath, auth: "signed", wantStatus: 405},
		{name: "another path is not found", method: "GET", path: "/ring/v1/other", auth: "signed", wantStatus: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := testToken
			if tc.token == "-" {
				token = ""
			}
			n := &notes{full: tc.full}
			status := func() ([]byte, error) { return []byte(`{"environments":[]}`), nil }
			if tc.noStatus {
				status = nil
			}
			h := Handler(token, "b", n.notify, status)
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			body, now := []byte(tc.body), time.Now()
			switch tc.auth {
			case "signed":
				sign(req, testToken, "b", body, now)
			case "wrong":
				sign(req, "wrong", "b", body, now)
			case "empty":
				sign(req, "", "b", body, now)
			case "bearer":
				req.Header.Set("Authorization", "Bearer "+testToken)
			case "stale":
				sign(req, testToken, "b", body, now.Add(-MaxSkew-2*time.Second))
			case "future":
				sign(req, testToken, "b", body, now.Add(MaxSkew+2*time.Second))
			case "tampered":
				sign(req, testToken, "b", []byte(`{"repository":"other","kind":"push"}`), now)
			case "another member":
				sign(req, testToken, "c", body, now)
			case "other path":
				other := httptest.NewRequest(tc.method, StatusPath, nil)
				sign(other, testToken, "b", body, now)
				req.Header = other.Header
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.wantStatus, rec.Code, rec.Body.String())
			assert.Equal(t, tc.wantNotes, n.list())
			if tc.wantBody != "" {
				assert.Equal(t, tc.wantBody, rec.Body.String())
			}
		})
	}
}

// serve runs h on a real loopback listener with Ferry's bounded server and
// returns a Member whose Address points at it.
func serve(t *testing.T, id string, h http.Handler) Member {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httpserver.New(ln.Addr().String(), h, httpserver.Options{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return Member{Identity: id, Address: "http://" + ln.Addr().String() + "/"}
}

func TestForwardAndFetchStatusReachAMemberOverARealListener(t *testing.T) {
	t.Parallel()
	n := &notes{}
	m := serve(t, "b", Handler(testToken, "b", n.notify, func() ([]byte, error) { return []byte(`{"owner":"b"}`), nil }))
	client := &http.Client{}

	require.NoError(t, Forward(t.Context(), client, m, testToken, Notification{Repository: "models", Kind: KindPush}))
	assert.Equal(t, []string{"models push"}, n.list())
	got, err := FetchStatus(t.Context(), client, m, testToken)
	require.NoError(t, err)
	assert.JSONEq(t, `{"owner":"b"}`, string(got))

	err = Forward(t.Context(), client, m, "wrong-token", Notification{Repository: "models", Kind: KindPush})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "member b: notify models: answered 401"), err.Error())
	assert.NotContains(t, err.Error(), "wrong-token", "errors never carry the token")
	_, err = FetchStatus(t.Context(), client, m, "wrong-token")
	assert.ErrorContains(t, err, "member b: status: answered 401")

	err = Forward(t.Context(), client, Member{Identity: "c"}, testToken, Notification{Repository: "models", Kind: KindPush})
	assert.EqualError(t, err, "member c: notify models: no address on its lease")

	// A Lease of c pointing at b's address: b refuses what was signed for c.
	elsewhere := Member{Identity: "c", Address: m.Address}
	err = Forward(t.Context(), client, elsewhere, testToken, Notification{Repository: "models", Kind: KindPush})
	assert.EqualError(t, err, "member c: notify models: answered 401", "signed for c, refused by b")
	_, err = FetchStatus(t.Context(), client, elsewhere, testToken)
	assert.EqualError(t, err, "member c: status: answered 401")
	assert.Equal(t, []string{"models push"}, n.list(), "b acted on nothing signed for c")
}

func TestForwardTriesOnceMoreOnlyWhenTheFirstAttemptGotNoAnswer(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int32
	n := &notes{}
	inner := Handler(testToken, "b", n.notify, nil)
	flaky := serve(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			// Drop the connection without an answer, as a restarting peer would.
			conn, _, err := http.NewResponseController(w).Hijack()
			require.NoError(t, err)
			conn.Close()
			return
		}
		inner.ServeHTTP(w, r)
	}))
	require.NoError(t, Forward(t.Context(), &http.Client{}, flaky, testToken, Notification{Repository: "models", Kind: KindPush}))
	assert.EqualValues(t, 2, attempts.Load())
	assert.Equal(t, []string{"models push"}, n.list())

	var busyAttempts atomic.Int32
	busy := serve(t, "c", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busyAttempts.Add(1)
		Handler(testToken, "c", func(Notification) bool { return false }, nil).ServeHTTP(w, r)
	}))
	err := Forward(t.Context(), &http.Client{}, busy, testToken, Notification{Repository: "models", Kind: KindPush})
	assert.ErrorContains(t, err, "member c: notify models: answered 503")
	assert.EqualValues(t, 1, busyAttempts.Load(), "an answer, even a refusal, is not retried")
}

func TestForwardAndFetchStatusGiveUpWithinTheirBounds(t *testing.T) {
	t.Parallel()
	hung := serve(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; ends when the caller gives up
	}))

	start := time.Now()
	err := Forward(t.Context(), &http.Client{}, hung, testToken, Notification{Repository: "models", Kind: KindPush})
	took := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, took, ForwardTimeout-50*time.Millisecond)
	assert.Less(t, took, ForwardTimeout+time.Second, "Forward is bounded by ForwardTimeout, its retry included")

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = FetchStatus(ctx, &http.Client{}, hung, testToken)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second, "FetchStatus honours a shorter deadline of its caller")

	huge := serve(t, "c", Handler(testToken, "c", nil, func() ([]byte, error) {
		return make([]byte, MaxStatusBytes+1), nil
	}))
	_, err = FetchStatus(t.Context(), &http.Client{}, huge, testToken)
	assert.ErrorContains(t, err, "member c: status: answer over")
}

func TestTheTokenNeverLeavesTheMemberEvenForAnAddressALeaseForged(t *testing.T) {
	t.Parallel()
	// Whoever can write a Lease in the ring's namespace chooses where
	// members send their requests: what arrives there must not let them call
	// the real members (other than replaying within MaxSkew).
	var seen []string
	var mu sync.Mutex
	forged := serve(t, "forged", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		for k, vs := range r.Header {
			seen = append(seen, k+": "+strings.Join(vs, ","))
		}
		seen = append(seen, r.URL.String(), string(body))
		w.WriteHeader(http.StatusAccepted)
	}))
	require.NoError(t, Forward(t.Context(), &http.Client{}, forged, testToken, Notification{Repository: "models", Kind: KindPush}))
	_, err := FetchStatus(t.Context(), &http.Client{}, forged, testToken)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	for _, s := range seen {
		assert.NotContains(t, s, testToken)
	}
}

func TestForwardAndFetchStatusFollowNoRedirect(t *testing.T) {
	t.Parallel()
	// A member's address answers with a redirect to somewhere else (the
	// cloud metadata service, an internal admin API): the call ends there.
	var followed atomic.Int32
	target := serve(t, "target", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirecting := serve(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, strings.TrimRight(target.Address, "/")+"/latest/meta-data", code)
		}))
		client := &http.Client{}
		err := Forward(t.Context(), client, redirecting, testToken, Notification{Repository: "models", Kind: KindPush})
		assert.EqualError(t, err, fmt.Sprintf("member b: notify models: answered %d", code))
		_, err = FetchStatus(t.Context(), client, redirecting, testToken)
		assert.EqualError(t, err, fmt.Sprintf("member b: status: answered %d", code))
		assert.Nil(t, client.CheckRedirect, "the caller's client is not changed")
	}
	assert.Zero(t, followed.Load(), "no redirect was followed")
}

func TestAnAnswerOtherThan2xxIsReportedByItsStatusCodeAlone(t *testing.T) {
	t.Parallel()
	// Whatever the answering server says, in its body or its reason phrase,
	// stays out of the error, which is logged and shown on status pages.
	chatty := serve(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		defer conn.Close()
		body := "aws_secret_access_key=AKIA-from-the-body"
		fmt.Fprintf(buf, "HTTP/1.1 500 reason-phrase-AKIA\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		buf.Flush()
	}))
	err := Forward(t.Context(), &http.Client{}, chatty, testToken, Notification{Repository: "models", Kind: KindPush})
	assert.EqualError(t, err, "member b: notify models: answered 500")
	_, err = FetchStatus(t.Context(), &http.Client{}, chatty, testToken)
	assert.EqualError(t, err, "member b: status: answered 500")
}

func TestForwardRefusesAnAddressItWouldNotReadFromALease(t *testing.T) {
	t.Parallel()
	var called atomic.Int32
	m := serve(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Add(1) }))
	for _, addr := range []string{
		strings.Replace(m.Address, "http://", "http://user:pw@", 1),
		strings.TrimRight(m.Address, "/") + "/admin",
		strings.TrimRight(m.Address, "/") + "?x=1",
	} {
		err := Forward(t.Context(), &http.Client{}, Member{Identity: "b", Address: addr}, testToken, Notification{Repository: "models", Kind: KindPush})
		assert.ErrorContains(t, err, "member b: notify models: address on its lease: ", addr)
	}
	assert.Zero(t, called.Load())
}
