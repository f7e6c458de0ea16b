package promote_test

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/githubtest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
)

// Canaries: in the key file, in every minted token.
const (
	keyCanary   = "KEYCANARY"
	tokenCanary = "TOKENCANARY"
)

func TestTheKeyAndTheTokensNeverAppearInErrorsOrLogs(t *testing.T) {
	w := newAppWorld(t, time.Hour, "ghs_"+tokenCanary)
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []error
	fail := func(path string, err error) {
		t.Helper()
		require.Error(t, err, path)
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
		log.Error("operation failed", "path", path, "err", err) // as the engine logs a failure
	}
	// The key file carries a canary, in a comment before the PEM block.
	pem := append([]byte(keyCanary+": ferry's App key\n"), w.pem...)
	newApp := func(key []byte) *promote.App {
		app, err := promote.NewApp(promote.AppOptions{APIURL: w.gh.URL, ID: appID, PrivateKey: key, Logger: log})
		require.NoError(t, err)
		return app
	}
	app := newApp(pem)
	inst := app.Installation(7)
	repo := w.open(t, inst)
	_, err := repo.Head(t.Context())
	require.NoError(t, err, "a token is minted and used")

	_, err = promote.NewApp(promote.AppOptions{ID: appID, PrivateKey: []byte(keyCanary + "\n-----BEGIN RSA PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString([]byte(keyCanary)) + "\n-----END RSA PRIVATE KEY-----\n"), Logger: log})
	fail("a key that does not parse", err)

	_, err = app.Installation(99).Token(t.Context())
	fail("a wrong installation", err)

	_, otherPEM := githubtest.NewAppKey(t)
	_, err = newApp(otherPEM).Installation(7).Token(t.Context())
	fail("a 401 on minting (a key GitHub does not know)", err)

	w.gh.Inject(githubtest.Fault{Path: "/app/installations/7/access_tokens", Status: 401, Body: `{"message":"Bad credentials"}`})
	_, err = newApp(pem).Installation(7).Token(t.Context())
	fail("a 401 on minting (GitHub says so)", err)

	// Revoked tokens: ferry still holds one it believes good.
	w.gh.RevokeInstallationTokens()
	_, err = repo.Fetch(t.Context())
	fail("a git 401", err)
	client, err := promote.NewClient(promote.ClientOptions{APIURL: w.gh.URL, TokenSource: inst.Token})
	require.NoError(t, err)
	err = client.Repository(githubtest.DefaultOwner, "models").SetStatus(t.Context(), promote.CommitStatus{SHA: w.head, Context: "ferry/dev", State: "success"})
	fail("an API 401", err)
	_, _, err = newApp(pem).Installation(7).Author(t.Context())
	require.NoError(t, err, "GET /users/<bot> with a fresh token")

	// Every secret: the canaries, each line of the key, each token minted and
	// each credential the server received (tokens and the App's JWTs).
	secrets := []string{keyCanary, tokenCanary}
	for line := range strings.SplitSeq(string(w.pem), "\n") {
		if len(line) > 16 && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line)
		}
	}
	secrets = append(secrets, w.gh.InstallationTokens()...)
	for _, r := range w.gh.Requests() {
		if _, credential, ok := strings.Cut(r.Authorization, " "); ok {
			secrets = append(secrets, credential)
		}
	}
	require.NotEmpty(t, w.gh.InstallationTokens())
	require.Contains(t, logs.String(), "github app token minted", "the logger was used: the check below can fail")

	for _, err := range errs {
		text := err.Error() + fmt.Sprintf(" %+v %v", err, err)
		for _, s := range secrets {
			assert.NotContains(t, text, s, "error: %s", err)
		}
	}
	for _, s := range secrets {
		assert.NotContains(t, logs.String(), s)
	}
	t.Logf("errors, as a user sees them:\n%s", errorsText(errs))
}

func errorsText(errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		b.WriteString("  " + err.Error() + "\n")
	}
	return b.String()
}
