package promote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// DefaultRefreshBefore is how long before its expiry an installation token is
// replaced, unless AppOptions says otherwise. It is ghinstallation's own
// margin, and so also the most an App can ask for: ghinstallation keeps a
// token until a minute before its expiry whatever its caller wants.
const DefaultRefreshBefore = time.Minute

// AppOptions configures an App.
type AppOptions struct {
	// APIURL is the REST API's base URL; "" means DefaultAPIURL. Tokens are
	// minted there too, so a GitHub Enterprise Server App mints on its own
	// host (https://HOST/api/v3/).
	APIURL string
	// ID is the App's ID, from its settings page.
	ID int64
	// PrivateKey is one of the App's private keys, as ParseAppKey reads it.
	// It signs the short-lived JWTs that mint installation tokens, and never
	// appears in an error or a log.
	PrivateKey []byte
	// RefreshBefore is how long before its expiry an installation token is
	// replaced: a token handed out is good for at least that long. 0 means
	// DefaultRefreshBefore, which is also its maximum. Tests shorten it to
	// work with tokens that live seconds.
	RefreshBefore time.Duration
	// Transport is the HTTP transport under the retries (as in
	// ClientOptions); nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Logger gets a Debug record for each minted token (installation and
	// expiry, never the token) and an Info record for each installation
	// found by owner; nil discards.
	Logger *slog.Logger
}

// App is a GitHub App: it finds its installations, mints their tokens, one
// cache per installation however many repositories share it, and knows its
// bot user. It is safe for concurrent use.
type App struct {
	id            int64
	base          *url.URL
	newApps       func() *ghinstallation.AppsTransport
	refreshBefore time.Duration
	log           *slog.Logger
	// secrets holds every token minted, so no error leaves with one.
	secrets *secrets
	// gh calls the API as the App (a JWT): /app and the installation lookups.
	gh *github.Client
	rt http.RoundTripper

	mu            sync.Mutex
	installations map[int64]*installation

	// lookup serialises the lookups below, which are made once: an owner's
	// installation and the bot user. A channel, so a waiter can give up.
	lookup chan struct{}
	owners map[string]int64 // lower-case owner -> installation ID
	bot    *bot
}

type bot struct{ name, email string }

// NewApp returns an App. It makes no request; the first Token does.
func NewApp(opts AppOptions) (*App, error) {
	base, err := apiBaseURL(opts.APIURL)
	if err != nil {
		return nil, err
	}
	if opts.ID <= 0 {
		return nil, fmt.Errorf("github app: ID %d is not an App ID; give the number on the App's settings page", opts.ID)
	}
	key, err := ParseAppKey(opts.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("github app %d: %w", opts.ID, err)
	}
	switch {
	case opts.RefreshBefore == 0:
		opts.RefreshBefore = DefaultRefreshBefore
	case opts.RefreshBefore < 0 || opts.RefreshBefore > DefaultRefreshBefore:
		return nil, fmt.Errorf("github app %d: RefreshBefore %s is outside (0, %s]", opts.ID, opts.RefreshBefore, DefaultRefreshBefore)
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rt := &retryTransport{base: opts.Transport, maxWait: time.Minute, retries: 3, timeout: 30 * time.Second}
	a := &App{
		id:   opts.ID,
		base: base,
		// Each installation gets an AppsTransport of its own: ghinstallation
		// v2.10.0 writes its AppsTransport's BaseURL and Client on every
		// refresh (transport.go, refreshToken), a data race when two
		// installations share one.
		newApps: func() *ghinstallation.AppsTransport {
			atr := ghinstallation.NewAppsTransportFromPrivateKey(rt, opts.ID, key)
			atr.BaseURL = strings.TrimSuffix(base.String(), "/")
			return atr
		},
		refreshBefore: opts.RefreshBefore,
		log:           opts.Logger,
		secrets:       newSecrets(),
		rt:            rt,
		installations: map[int64]*installation{},
		lookup:        make(chan struct{}, 1),
		owners:        map[string]int64{},
	}
	a.gh = a.client(a.newApps())
	return a, nil
}

// client returns a go-github client of the App's API over rt.
func (a *App) client(rt http.RoundTripper) *github.Client {
	gh := github.NewClient(&http.Client{Transport: rt, CheckRedirect: sameHostRedirects(a.base.Host)})
	gh.BaseURL = a.base
	gh.UserAgent = "ferry"
	return gh
}

// ID returns the App's ID.
func (a *App) ID() int64 { return a.id }

// Installation is the App installed on an account, naming the repositories
// its tokens may reach. Handles of the same installation share its token.
type Installation struct {
	app   *App
	id    int64  // 0 until found, for InstallationOf
	owner string // set for InstallationOf
}

// Installation returns the installation with the given ID. It makes no
// request.
func (a *App) Installation(id int64) *Installation {
	return &Installation{app: a, id: id}
}

// InstallationOf returns the App's installation on an organisation or user
// account. It makes no request: the first Token finds the installation, once
// per owner for the App, as GitHub documents it — GET
// /orgs/{owner}/installation, then GET /users/{owner}/installation when the
// owner is not an organisation.
func (a *App) InstallationOf(owner string) *Installation {
	return &Installation{app: a, owner: owner}
}

// String names the installation for errors and logs.
func (i *Installation) String() string {
	if i.id != 0 {
		return fmt.Sprintf("github app %d: installation %d", i.app.id, i.id)
	}
	return fmt.Sprintf("github app %d: installation on %s", i.app.id, i.owner)
}

// Token returns a token of the installation that is good for at least
// AppOptions.RefreshBefore: the cached one, or one minted now. Callers ask
// for it before each use rather than keeping it. Errors never hold a token
// or the key; IsTransient says whether to retry (network, 5xx, rate limits)
// or whether a person must act (a key GitHub refuses, an installation that
// does not exist or is suspended).
func (i *Installation) Token(ctx context.Context) (string, error) {
	in, err := i.resolve(ctx)
	if err != nil {
		return "", err
	}
	return in.token(ctx)
}

// Author returns the name and email that commits made as the App carry, so
// GitHub shows them as its bot's: "<slug>[bot]" and
// "<user id>+<slug>[bot]@users.noreply.github.com". It is looked up once
// for the App (GET
// /app, then GET /users/<slug>[bot] with this installation's token); a
// failed lookup is tried again on the next call.
func (i *Installation) Author(ctx context.Context) (name, email string, err error) {
	a := i.app
	in, err := i.resolve(ctx) // before taking lookup, which resolve may need
	if err != nil {
		return "", "", err
	}
	if err := a.lock(ctx); err != nil {
		return "", "", err
	}
	defer a.unlock()
	if a.bot != nil {
		return a.bot.name, a.bot.email, nil
	}
	app, _, err := a.gh.Apps.Get(ctx, "")
	if err != nil {
		return "", "", fmt.Errorf("github app %d: get the app: %w", a.id, a.secrets.redact(err))
	}
	if app.GetSlug() == "" {
		return "", "", fmt.Errorf("github app %d: GitHub answered GET /app without a slug", a.id)
	}
	login := app.GetSlug() + "[bot]"
	user, _, err := a.client(&authTransport{base: a.rt, host: a.base.Host, token: in.token}).Users.Get(ctx, login)
	if err != nil {
		return "", "", fmt.Errorf("github app %d: get user %s: %w", a.id, login, a.secrets.redact(err))
	}
	a.bot = &bot{name: login, email: fmt.Sprintf("%d+%s@users.noreply.github.com", user.GetID(), login)}
	return a.bot.name, a.bot.email, nil
}

// resolve returns the installation's shared state, finding its ID first
// when the handle names an owner.
func (i *Installation) resolve(ctx context.Context) (*installation, error) {
	id := i.id
	if id == 0 {
		var err error
		if id, err = i.app.find(ctx, i.owner); err != nil {
			return nil, err
		}
	}
	a := i.app
	a.mu.Lock()
	defer a.mu.Unlock()
	in, ok := a.installations[id]
	if !ok {
		in = &installation{app: a, id: id, tr: ghinstallation.NewFromAppsTransport(a.newApps(), id), sem: make(chan struct{}, 1)}
		a.installations[id] = in
	}
	return in, nil
}

// find returns the ID of the App's installation on owner, asking GitHub the
// first time. Owner endpoints, rather than GET /repos/{owner}/{repo}/installation,
// because the setting names an owner: one lookup serves all its repositories.
func (a *App) find(ctx context.Context, owner string) (int64, error) {
	if err := a.lock(ctx); err != nil {
		return 0, err
	}
	defer a.unlock()
	key := strings.ToLower(owner)
	if id, ok := a.owners[key]; ok {
		return id, nil
	}
	inst, _, err := a.gh.Apps.FindOrganizationInstallation(ctx, owner)
	if notFound(err) {
		inst, _, err = a.gh.Apps.FindUserInstallation(ctx, owner)
	}
	switch {
	case notFound(err):
		return 0, &tokenError{msg: fmt.Sprintf("github app %d: not installed on %s; install the App on the account that owns the repository, or set auth.githubApp.installationID", a.id, owner)}
	case err != nil:
		return 0, fmt.Errorf("github app %d: find the installation on %s: %w", a.id, owner, a.secrets.redact(err))
	case inst.GetID() == 0:
		return 0, fmt.Errorf("github app %d: GitHub answered the installation on %s without an id", a.id, owner)
	}
	a.owners[key] = inst.GetID()
	a.log.Info("github app installation found", "owner", owner, "installation", inst.GetID())
	return inst.GetID(), nil
}

func notFound(err error) bool {
	er, ok := errors.AsType[*github.ErrorResponse](err)
	return ok && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}

func (a *App) lock(ctx context.Context) error {
	select {
	case a.lookup <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("github app %d: %w", a.id, ctx.Err())
	}
}

func (a *App) unlock() { <-a.lookup }

// githubMessage reads GitHub's error message from a response and closes its
// body: ", <message>", cut short, or "" when there is none.
func githubMessage(resp *http.Response) string {
	defer resp.Body.Close()
	var body struct {
		Message string `json:"message"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) != nil || body.Message == "" {
		return ""
	}
	msg := body.Message
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	return ": " + msg
}
