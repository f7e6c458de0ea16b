package promote

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-gitops/ferry/internal/githubtest"
)

const appID = 4711

// newAppServer starts a GitHub playing App appID, installed on the
// organisation acme (installation 7) and the user octo (installation 8),
// minting tokens that live ttl (0: an hour); it returns the App's key.
func newAppServer(t *testing.T, ttl time.Duration, srvOpts githubtest.Options) (*githubtest.Server, []byte) {
	t.Helper()
	key, pem := githubtest.NewAppKey(t)
	srvOpts.App = &githubtest.AppOptions{
		ID: appID, PublicKey: &key.PublicKey, TokenTTL: ttl, TokenPrefix: "ghs_CANARY",
		Installations: []githubtest.AppInstallation{{ID: 7, Account: "acme", Org: true}, {ID: 8, Account: "octo"}},
	}
	return githubtest.New(t, srvOpts), pem
}

func newTestApp(t *testing.T, srv *githubtest.Server, pem []byte, mutate ...func(*AppOptions)) *App {
	t.Helper()
	opts := AppOptions{APIURL: srv.URL, ID: appID, PrivateKey: pem}
	for _, m := range mutate {
		m(&opts)
	}
	app, err := NewApp(opts)
	require.NoError(t, err)
	return app
}

// count returns how many requests the server got for method and path.
func count(srv *githubtest.Server, method, path string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

func TestOneMintingServesEveryRepositoryOfAnInstallation(t *testing.T) {
	srv, pem := newAppServer(t, 0, githubtest.Options{})
	app := newTestApp(t, srv, pem)
	// Three repositories name the same installation, two ways.
	handles := []*Installation{app.Installation(7), app.Installation(7), app.InstallationOf("ACME")}
	tokens := make([]string, 30)
	var g errgroup.Group
	for i := range tokens {
		g.Go(func() (err error) {
			tokens[i], err = handles[i%len(handles)].Token(t.Context())
			return err
		})
	}
	require.NoError(t, g.Wait())
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok)
	}
	assert.Equal(t, 1, srv.Mints(7), "one minting for the installation")
	assert.Equal(t, 1, count(srv, http.MethodGet, "/orgs/ACME/installation"), "the owner is looked up once")
}

func TestATokenIsReplacedBeforeItExpiresAndTheAPIClientSendsTheCurrentOne(t *testing.T) {
	srv, pem := newAppServer(t, 2*time.Second, githubtest.Options{})
	app := newTestApp(t, srv, pem, func(o *AppOptions) { o.RefreshBefore = 500 * time.Millisecond })
	inst := app.Installation(7)
	c, err := NewClient(ClientOptions{APIURL: srv.URL, TokenSource: inst.Token})
	require.NoError(t, err)
	gh := c.Repository(githubtest.DefaultOwner, githubtest.DefaultRepo)
	status := CommitStatus{SHA: strings.Repeat("a", 40), Context: "ferry/dev", State: "success", Description: "applied"}

	require.NoError(t, gh.SetStatus(t.Context(), status))
	require.NoError(t, gh.SetStatus(t.Context(), status))
	first := srv.InstallationTokens()
	require.Len(t, first, 1, "the second call reuses the token")

	require.Eventually(t, func() bool { return !srv.ValidInstallationToken(first[0]) }, 5*time.Second, 20*time.Millisecond,
		"waiting out the first token's expiry (2 s, set above)")
	require.NoError(t, gh.SetStatus(t.Context(), status), "a token past its expiry is never sent")
	all := srv.InstallationTokens()
	require.Len(t, all, 2)

	var sent []string
	for _, r := range srv.Requests() {
		if r.Path == "/repos/acme/models/statuses/"+status.SHA {
			sent = append(sent, r.Authorization)
			assert.Equal(t, http.StatusCreated, r.Status)
		}
	}
	assert.Equal(t, []string{"Bearer " + all[0], "Bearer " + all[0], "Bearer " + all[1]}, sent)
}

func TestAnOwnersInstallationIsFoundAsGitHubDocumentsIt(t *testing.T) {
	srv, pem := newAppServer(t, 0, githubtest.Options{})
	app := newTestApp(t, srv, pem)
	for range 2 {
		_, err := app.InstallationOf("octo").Token(t.Context())
		require.NoError(t, err)
	}
	assert.Equal(t, 1, count(srv, http.MethodGet, "/orgs/octo/installation"), "an organisation first")
	assert.Equal(t, 1, count(srv, http.MethodGet, "/users/octo/installation"), "then a user, once")
	assert.Equal(t, 1, srv.Mints(8))

	_, err := app.InstallationOf("nobody").Token(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "github app 4711: not installed on nobody; install the App")
	assert.False(t, IsTransient(err), "a person must install the App")
}

func TestCommitsAreAuthoredAsTheAppsBotLookedUpOnce(t *testing.T) {
	srv, pem := newAppServer(t, 0, githubtest.Options{})
	app := newTestApp(t, srv, pem)
	login, id := srv.AppBot()
	for _, inst := range []*Installation{app.Installation(7), app.InstallationOf("octo")} {
		name, email, err := inst.Author(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "ferry-app[bot]", name)
		assert.Equal(t, login, name)
		assert.Equal(t, strconv.FormatInt(id, 10)+"+ferry-app[bot]@users.noreply.github.com", email)
	}
	assert.Equal(t, 1, count(srv, http.MethodGet, "/app"))
	assert.Equal(t, 1, count(srv, http.MethodGet, "/users/ferry-app[bot]"))
}

// recordingTransport remembers the URL of every request it carries.
type recordingTransport struct {
	mu   sync.Mutex
	urls []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.Method+" "+req.URL.String())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func TestAnEnterpriseAppMintsAtItsOwnAPI(t *testing.T) {
	srv, pem := newAppServer(t, 0, githubtest.Options{})
	rec := &recordingTransport{}
	enterprise := srv.URL + "api/v3/"
	app := newTestApp(t, srv, pem, func(o *AppOptions) { o.APIURL = enterprise; o.Transport = rec })
	_, err := app.InstallationOf("acme").Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{
		"GET " + enterprise + "orgs/acme/installation",
		"POST " + enterprise + "app/installations/7/access_tokens",
	}, rec.urls)
}

func TestMintingFailuresAreClassedByWhatRetriesThem(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     *githubtest.Fault
		otherKey  bool
		id        int64
		message   string
		transient bool
	}{
		{name: "an installation that does not exist needs a person", id: 99,
			message: "github app 4711: installation 99: mint a token: 404 Not Found: Not Found (is the App still installed there"},
		{name: "a key GitHub does not know needs a person", otherKey: true, id: 7,
			message: "installation 7: mint a token: 401 Unauthorized: A JSON web token could not be decoded (is the private key one of this App's"},
		{name: "a suspended installation needs a person", id: 7, fault: &githubtest.Fault{Path: "/app/installations/7/access_tokens", Status: 403, Body: `{"message":"This installation has been suspended"}`},
			message: "403 Forbidden: This installation has been suspended"},
		{name: "a 502 is tried again later", id: 7, fault: &githubtest.Fault{Path: "/app/installations/7/access_tokens", Status: 502},
			message: "502 Bad Gateway", transient: true},
		{name: "a rate limit longer than the wait is tried again later", id: 7, fault: &githubtest.Fault{Path: "/app/installations/7/access_tokens", Secondary: true, RetryAfter: 2 * time.Minute},
			message: "403 Forbidden", transient: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, pem := newAppServer(t, 0, githubtest.Options{})
			if tc.otherKey {
				_, pem = githubtest.NewAppKey(t)
			}
			if tc.fault != nil {
				srv.Inject(*tc.fault)
			}
			inst := newTestApp(t, srv, pem).Installation(tc.id)
			_, err := inst.Token(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.message)
			assert.Equal(t, tc.transient, IsTransient(err))

			// An API call whose token cannot be minted fails as the minting did.
			if tc.fault != nil {
				srv.Inject(*tc.fault)
			}
			c, err := NewClient(ClientOptions{APIURL: srv.URL, TokenSource: inst.Token})
			require.NoError(t, err)
			err = c.Repository("acme", "models").SetStatus(t.Context(), CommitStatus{SHA: strings.Repeat("b", 40), Context: "ferry/dev", State: "success"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.message)
			assert.Equal(t, tc.transient, IsTransient(err))
			assert.Zero(t, count(srv, http.MethodPost, "/repos/acme/models/statuses/"+strings.Repeat("b", 40)), "nothing is sent without a token")
		})
	}
}

func TestNewAppRefusesOptionsThatCannotWork(t *testing.T) {
	_, pem := githubtest.NewAppKey(t)
	for _, tc := range []struct {
		name    string
		opts    AppOptions
		message string
	}{
		{"an App without an ID is refused", AppOptions{PrivateKey: pem}, "github app: ID 0 is not an App ID"},
		{"a key that is not PEM is refused without being shown", AppOptions{ID: 1, PrivateKey: []byte("CANARY not a key")}, "github app 1: not a PEM private key"},
		{"a PEM block that is no key is refused without being shown", AppOptions{ID: 1, PrivateKey: []byte("-----BEGIN RSA PRIVATE KEY-----\nQ0FOQVJZ\n-----END RSA PRIVATE KEY-----\n")}, "github app 1: the private key does not parse"},
		{"a refresh margin beyond ghinstallation's is refused", AppOptions{ID: 1, PrivateKey: pem, RefreshBefore: 2 * time.Minute}, "RefreshBefore 2m0s is outside (0, 1m0s]"},
		{"an API URL that is not http is refused", AppOptions{ID: 1, PrivateKey: pem, APIURL: "ftp://ghe.example.com/"}, "expected https://api.github.com/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewApp(tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.message)
			assert.NotContains(t, err.Error(), "CANARY")
			assert.NotContains(t, err.Error(), "Q0FOQVJZ")
		})
	}
}

func TestAWaitingCallerGivesUpWithItsContext(t *testing.T) {
	srv, pem := newAppServer(t, 0, githubtest.Options{})
	srv.Inject(githubtest.Fault{Path: "/app/installations/7/access_tokens", Hang: true})
	inst := newTestApp(t, srv, pem).Installation(7)
	ctx, cancel := context.WithCancel(t.Context())
	minting := make(chan error, 1)
	go func() { _, err := inst.Token(ctx); minting <- err }()
	require.Eventually(t, func() bool { return count(srv, http.MethodPost, "/app/installations/7/access_tokens") == 1 }, 5*time.Second, 10*time.Millisecond)

	waiter, stop := context.WithCancel(t.Context())
	stop()
	_, err := inst.Token(waiter)
	require.ErrorIs(t, err, context.Canceled, "a caller waiting for the minting leaves when its context ends")
	cancel()
	require.ErrorIs(t, <-minting, context.Canceled)
	assert.True(t, IsTransient(err))
}
