package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultAppSlug is the App's slug when AppOptions leaves it empty.
const DefaultAppSlug = "ferry-app"

// AppOptions makes a Server play a GitHub App as well (Options.App): it
// mints installation tokens for JWTs signed with the App's key, finds the
// App's installations by account, tells the App about itself and its bot
// user, and accepts the tokens it minted, until they expire, wherever it
// accepts Options.Tokens. Git servers can ask it too (ValidInstallationToken).
type AppOptions struct {
	// ID is the App's ID, which a JWT's iss must be. Required.
	ID int64
	// Slug is the App's name in URLs; "" means DefaultAppSlug. Its bot user
	// is "<slug>[bot]".
	Slug string
	// PublicKey verifies the JWTs, signed RS256 with the matching private
	// key. Required.
	PublicKey *rsa.PublicKey
	// Installations are the accounts the App is installed on.
	Installations []AppInstallation
	// TokenTTL is how long a minted token is accepted; 0 means an hour, as
	// on GitHub. The expiry is written (expires_at) and enforced in whole
	// seconds, rounded up: a token lives at least TokenTTL.
	TokenTTL time.Duration
	// TokenPrefix starts every minted token; "" means "ghs_", GitHub's
	// prefix for installation tokens.
	TokenPrefix string
}

// AppInstallation is the App installed on one account.
type AppInstallation struct {
	ID int64
	// Account is the organisation's or user's login.
	Account string
	// Org says the account is an organisation, found at GET
	// /orgs/{account}/installation; otherwise it is a user, found at GET
	// /users/{account}/installation.
	Org bool
}

// app is the App's state on the server.
type app struct {
	opts AppOptions

	mu     sync.Mutex
	tokens map[string]*minted
	order  []string // tokens, oldest first
}

type minted struct {
	installation int64
	expires      time.Time
	revoked      bool
}

func newApp(opts AppOptions) *app {
	if opts.Slug == "" {
		opts.Slug = DefaultAppSlug
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.TokenPrefix == "" {
		opts.TokenPrefix = "ghs_"
	}
	opts.Installations = slices.Clone(opts.Installations)
	return &app{opts: opts, tokens: map[string]*minted{}}
}

// appRoutes adds the App's routes. /users/{login} is here as it is on GitHub
// for anyone, but the server asks for a token there as everywhere else.
func (s *Server) appRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /app", s.getApp)
	m.HandleFunc("POST /app/installations/{id}/access_tokens", s.createInstallationToken)
	m.HandleFunc("GET /orgs/{account}/installation", func(w http.ResponseWriter, r *http.Request) { s.findInstallation(w, r, true) })
	m.HandleFunc("GET /users/{account}/installation", func(w http.ResponseWriter, r *http.Request) { s.findInstallation(w, r, false) })
	m.HandleFunc("GET /users/{login}", s.getUser)
}

// appRoute reports whether a path is one GitHub authenticates with the App's
// JWT rather than a token.
func appRoute(path string) bool {
	if path == "/app" || strings.HasPrefix(path, "/app/") {
		return true
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 3 && (parts[0] == "orgs" || parts[0] == "users") && parts[2] == "installation":
		return true
	case len(parts) == 4 && parts[0] == "repos" && parts[3] == "installation":
		return true
	}
	return false
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	o := s.app.opts
	writeJSON(w, http.StatusOK, map[string]any{
		"id":       o.ID,
		"slug":     o.Slug,
		"node_id":  nodeID("A", o.ID),
		"name":     o.Slug,
		"owner":    user(r, s.opts.Owner),
		"html_url": webBase(r) + "apps/" + o.Slug,
		"permissions": map[string]string{
			"contents": "write", "pull_requests": "write", "statuses": "write", "checks": "read", "metadata": "read",
		},
		"events":     []string{"push", "pull_request", "check_run", "status"},
		"created_at": now(),
		"updated_at": now(),
	})
}

// installationJSON is an installation as GitHub describes it.
func (s *Server) installationJSON(r *http.Request, in AppInstallation) map[string]any {
	account := user(r, in.Account)
	target := "User"
	if in.Org {
		target, account.Type = "Organization", "Organization"
	}
	return map[string]any{
		"id":                   in.ID,
		"account":              account,
		"app_id":               s.app.opts.ID,
		"app_slug":             s.app.opts.Slug,
		"target_type":          target,
		"repository_selection": "all",
		"access_tokens_url":    apiBase(r) + "app/installations/" + strconv.FormatInt(in.ID, 10) + "/access_tokens",
		"html_url":             webBase(r) + "settings/installations/" + strconv.FormatInt(in.ID, 10),
	}
}

func (s *Server) findInstallation(w http.ResponseWriter, r *http.Request, org bool) {
	account := r.PathValue("account")
	for _, in := range s.app.opts.Installations {
		if in.Org == org && strings.EqualFold(in.Account, account) {
			writeJSON(w, http.StatusOK, s.installationJSON(r, in))
			return
		}
	}
	notFound(w)
}

func (s *Server) createInstallationToken(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if !slices.ContainsFunc(s.app.opts.Installations, func(in AppInstallation) bool { return in.ID == id }) {
		notFound(w)
		return
	}
	token, expires := s.app.mint(id)
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":      token,
		"expires_at": expires.Format(time.RFC3339),
		"permissions": map[string]string{
			"contents": "write", "pull_requests": "write", "statuses": "write", "checks": "read", "metadata": "read",
		},
		"repository_selection": "all",
	})
}

// mint issues a token of the installation.
func (a *app) mint(installation int64) (string, time.Time) {
	token := a.opts.TokenPrefix + rand.Text()
	expires := time.Now().Add(a.opts.TokenTTL)
	if whole := expires.Truncate(time.Second); !whole.Equal(expires) {
		expires = whole.Add(time.Second)
	}
	expires = expires.UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[token] = &minted{installation: installation, expires: expires}
	a.order = append(a.order, token)
	return token, expires
}

// valid reports whether token is a minted token still accepted.
func (a *app) valid(token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for t, m := range a.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return !m.revoked && time.Now().Before(m.expires)
		}
	}
	return false
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("login")
	known := []string{s.opts.Login, s.opts.Owner, s.app.opts.Slug + "[bot]"}
	for _, in := range s.app.opts.Installations {
		known = append(known, in.Account)
	}
	for _, k := range known {
		if strings.EqualFold(k, login) {
			writeJSON(w, http.StatusOK, user(r, k))
			return
		}
	}
	notFound(w)
}

// ValidInstallationToken reports whether token is one the App minted, not
// revoked and not expired: what a Git server in front of the same GitHub
// accepts as the password of x-access-token. False without Options.App.
func (s *Server) ValidInstallationToken(token string) bool {
	return s.app != nil && token != "" && s.app.valid(token)
}

// InstallationTokens returns every token the App minted, oldest first.
func (s *Server) InstallationTokens() []string {
	if s.app == nil {
		return nil
	}
	s.app.mu.Lock()
	defer s.app.mu.Unlock()
	return slices.Clone(s.app.order)
}

// Mints returns how many tokens the App minted for an installation.
func (s *Server) Mints(installation int64) int {
	if s.app == nil {
		return 0
	}
	s.app.mu.Lock()
	defer s.app.mu.Unlock()
	n := 0
	for _, m := range s.app.tokens {
		if m.installation == installation {
			n++
		}
	}
	return n
}

// RevokeInstallationTokens makes every token minted so far invalid, as
// GitHub does when an installation is suspended or a token is revoked; the
// holder still believes it good until its expiry.
func (s *Server) RevokeInstallationTokens() {
	if s.app == nil {
		return
	}
	s.app.mu.Lock()
	defer s.app.mu.Unlock()
	for _, m := range s.app.tokens {
		m.revoked = true
	}
}

// AppBot returns the login and user ID of the App's bot user, as GET
// /users/<slug>[bot] answers them.
func (s *Server) AppBot() (login string, id int64) {
	if s.app == nil {
		return "", 0
	}
	login = s.app.opts.Slug + "[bot]"
	return login, userID(login)
}
