package githubtest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

// Defaults for the Options fields left empty.
const (
	DefaultOwner = "acme"
	DefaultRepo  = "models"
	DefaultLogin = "ferry-bot"
)

// enterprisePrefix is where GitHub Enterprise Server serves the REST API, and
// where go-github's WithEnterpriseURLs sends requests.
const enterprisePrefix = "/api/v3"

// maxBodyBytes caps a request body the server reads; a larger one gets 413.
const maxBodyBytes = 32 << 20

// Options configures New. The zero value serves DefaultOwner/DefaultRepo
// without authentication.
type Options struct {
	// Tokens the server accepts in "Authorization: token X", "Bearer X" or as
	// the password of basic auth. Empty: no auth check. A request without
	// credentials gets 401 "Requires authentication", one with a token not
	// listed 401 "Bad credentials".
	Tokens []string
	// Owner and Repo name the one repository the server hosts, matched
	// case-insensitively as GitHub does; a request for another gets 404.
	Owner, Repo string
	// Login is the user every API request acts as: the author of pull
	// requests, comments and statuses created through the API.
	Login string
	// BranchExists, when set, is asked on pull request creation whether the
	// head branch exists; when it says no, creation fails with 422 as on
	// GitHub. Unset, every branch exists.
	BranchExists func(branch string) bool
	// BranchSHA, when set, gives the commit a branch points at, shown as
	// head.sha and base.sha of pull requests: an open pull request shows its
	// branches' current commits, a closed one the last the server saw. Unset,
	// or answering "", the sha fields are left out.
	BranchSHA func(branch string) string
	// App, when set, makes the server play a GitHub App too (app.go): it
	// mints installation tokens, and accepts them as it accepts Tokens.
	App *AppOptions
}

// Server is a GitHub REST API for one repository. All its methods are safe
// for concurrent use with each other and with requests; the ones that return
// state return copies.
type Server struct {
	// URL is the base URL with a trailing slash, e.g. http://127.0.0.1:PORT/.
	// Use it as a go-github client's BaseURL (github.com form), or pass it to
	// WithEnterpriseURLs, which adds the /api/v3/ prefix the server also serves.
	URL string

	t    testing.TB
	opts Options
	srv  *httptest.Server
	mux  *http.ServeMux
	// done is closed when the test ends, so hung requests give up and the
	// server can close.
	done chan struct{}

	mu       sync.Mutex
	nextID   int64
	pulls    []*pull // pulls[n-1] is pull request n
	labels   []label // the repository's labels, made as issues first use them
	comments []*Comment
	statuses map[string][]Status // by ref, in the order posted
	checks   []*checkRun
	faults   []*fault
	requests []Request

	app *app // nil without Options.App
}

// New starts a server for one test and closes it at t.Cleanup. Options with
// an owner or repository name GitHub would refuse fail the test.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Owner == "" {
		opts.Owner = DefaultOwner
	}
	if opts.Repo == "" {
		opts.Repo = DefaultRepo
	}
	if opts.Login == "" {
		opts.Login = DefaultLogin
	}
	for _, name := range []string{opts.Owner, opts.Repo, opts.Login} {
		if strings.ContainsAny(name, "/:? \t\n") {
			t.Fatalf("githubtest: %q is not a GitHub owner, repository or login name", name)
		}
	}
	opts.Tokens = slices.Clone(opts.Tokens) // the caller's slice may change under requests
	s := &Server{
		t:        t,
		opts:     opts,
		done:     make(chan struct{}),
		nextID:   1000,
		statuses: map[string][]Status{},
	}
	if opts.App != nil {
		if opts.App.ID <= 0 || opts.App.PublicKey == nil {
			t.Fatal(errAppOptions)
		}
		s.app = newApp(*opts.App)
	}
	s.mux = s.routes()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/"
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// Client returns a go-github client whose BaseURL is the server, sending
// token as a bearer token ("" sends none). Its connections close with the
// server.
func (s *Server) Client(token string) *github.Client {
	c := github.NewClient(s.srv.Client())
	if token != "" {
		c = c.WithAuthToken(token)
	}
	c.BaseURL = &url.URL{Scheme: "http", Host: s.srv.Listener.Addr().String(), Path: "/"}
	return c
}

// routes maps GitHub's routes to handlers. Everything else is 404, as on GitHub.
func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	const repo = "/repos/{owner}/{repo}"
	handle := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, s.hosted(h)) }

	handle("GET "+repo+"/pulls", s.listPulls)
	handle("POST "+repo+"/pulls", s.createPull)
	handle("GET "+repo+"/pulls/{number}", s.getPull)
	handle("PATCH "+repo+"/pulls/{number}", s.editPull)

	handle("GET "+repo+"/issues/comments/{id}", s.getComment)
	handle("PATCH "+repo+"/issues/comments/{id}", s.editComment)
	handle("DELETE "+repo+"/issues/comments/{id}", s.deleteComment)
	// GitHub's issues/{number}/comments and issues/comments/{id} overlap, a
	// pair ServeMux refuses; the issue routes share one pattern, less specific
	// than the comment ones, and dispatch on what follows the number.
	handle(repo+"/issues/{number}/{sub...}", s.issue)

	handle("POST "+repo+"/statuses/{sha...}", s.createStatus)
	// A ref may hold slashes (go-github escapes each segment, not the
	// slashes), so the route's last segment is cut off the rest by hand.
	handle("GET "+repo+"/commits/{rest...}", s.commit)

	if s.app != nil {
		s.appRoutes(m)
	}
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
	return m
}

// hosted answers 404 for a repository the server does not host.
func (s *Server) hosted(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.PathValue("owner"), s.opts.Owner) ||
			!strings.EqualFold(r.PathValue("repo"), s.opts.Repo) {
			notFound(w)
			return
		}
		h(w, r)
	}
}

// issue dispatches the routes under /repos/{owner}/{repo}/issues/{number}/.
func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	sub := r.PathValue("sub")
	switch {
	case sub == "comments" && r.Method == http.MethodGet:
		s.listComments(w, r)
	case sub == "comments" && r.Method == http.MethodPost:
		s.createComment(w, r)
	case sub == "labels" && r.Method == http.MethodGet:
		s.listLabels(w, r)
	case sub == "labels" && r.Method == http.MethodPost:
		s.setLabels(w, r, false)
	case sub == "labels" && r.Method == http.MethodPut:
		s.setLabels(w, r, true)
	case sub == "labels" && r.Method == http.MethodDelete:
		s.removeAllLabels(w, r)
	case strings.HasPrefix(sub, "labels/") && r.Method == http.MethodDelete:
		s.removeLabel(w, r, strings.TrimPrefix(sub, "labels/"))
	default:
		notFound(w)
	}
}

// commit dispatches GET /repos/{owner}/{repo}/commits/{ref}/(status|statuses|check-runs).
func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		notFound(w)
		return
	}
	ref := rest[:i]
	switch rest[i+1:] {
	case "status":
		s.combinedStatus(w, r, ref)
	case "statuses":
		s.listStatuses(w, r, ref)
	case "check-runs":
		s.listCheckRuns(w, r, ref)
	default:
		notFound(w)
	}
}

// serve logs the request, authenticates it, applies a matching fault, and
// hands the rest to the routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return // the client went away mid-body
	}
	r = stripEnterprise(r)
	i, id := s.record(r, body)
	rec := &recorder{ResponseWriter: w}
	defer func() { s.finish(i, rec.status) }()
	setHeaders(w.Header(), id)

	if len(body) > maxBodyBytes {
		writeError(rec, http.StatusRequestEntityTooLarge, "Payload too big", docsREST)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !s.authorized(rec, r) {
		return
	}
	// Authenticated from here on.
	if f, ok := s.takeFault(r); ok {
		s.fail(rec, r, f, id)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// setHeaders sets what GitHub sends on every response; rate-limit values are
// generous so that a client never thinks itself limited.
func setHeaders(h http.Header, id string) {
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-GitHub-Request-Id", id)
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Used", "1")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// authorized checks the request's token against Options.Tokens and the
// App's current installation tokens, and answers 401 as GitHub does when it
// is missing or wrong. The App's own routes take its JWT instead.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.app != nil && appRoute(r.URL.Path) {
		return s.authorizeJWT(w, r)
	}
	if len(s.opts.Tokens) == 0 && s.app == nil {
		return true
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		writeError(w, http.StatusUnauthorized, "Requires authentication", docsREST)
		return false
	}
	got := token(header)
	for _, want := range s.opts.Tokens {
		if got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			return true
		}
	}
	if s.ValidInstallationToken(got) {
		return true
	}
	writeError(w, http.StatusUnauthorized, "Bad credentials", docsREST)
	return false
}

// token returns the token of an Authorization header, or "" for one GitHub
// would not accept.
func token(header string) string {
	scheme, rest, _ := strings.Cut(header, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "token", "bearer":
		return rest
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return ""
		}
		_, password, _ := strings.Cut(string(raw), ":")
		return password
	}
	return ""
}

// baseKey carries a request's API base URL in its context.
type baseKey struct{}

// stripEnterprise removes the /api/v3 prefix, so both forms reach the same
// routes, and records the API base URL the request used, for the URLs the
// server writes back (Link headers, "url" fields).
func stripEnterprise(r *http.Request) *http.Request {
	base := "http://" + r.Host + "/"
	path, ok := strings.CutPrefix(r.URL.Path, enterprisePrefix)
	if ok && (path == "" || path[0] == '/') {
		base += strings.TrimPrefix(enterprisePrefix, "/") + "/"
		if path == "" {
			path = "/"
		}
	} else {
		path = r.URL.Path
	}
	r2 := r.WithContext(context.WithValue(r.Context(), baseKey{}, base))
	u := *r.URL
	u.Path, u.RawPath = path, ""
	r2.URL = &u
	return r2
}

// apiBase returns the API base URL the request used, with a trailing slash.
func apiBase(r *http.Request) string {
	if b, ok := r.Context().Value(baseKey{}).(string); ok {
		return b
	}
	return "http://" + r.Host + "/"
}

// webBase returns the URL pages (html_url) are under, with a trailing slash.
func webBase(r *http.Request) string { return "http://" + r.Host + "/" }

// now is the server's clock: UTC, in whole seconds as GitHub's timestamps are.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// newID returns an id unique across the server's objects. The caller holds s.mu.
func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}
