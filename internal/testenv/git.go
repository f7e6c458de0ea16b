package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// GitServer serves bare repositories over Git's smart HTTP protocol with
// Debian's `git http-backend`, so clients use real http:// URLs. Pushes are
// accepted. With Username set, every request needs that basic-auth user and
// Password.
type GitServer struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:PORT.
	URL string
	// Root is the directory that holds the bare repositories.
	Root string

	username, password string
	git                string
	srv                *httptest.Server
	ownRoot            bool
	authorize          func(user, password string) bool
	requests           atomic.Int64
}

// GitServerOptions configures a GitServer. The zero value serves without
// auth, from a temporary directory, on a free loopback port.
type GitServerOptions struct {
	Username, Password string
	// Root holds the bare repositories; "" means a directory of the
	// server's own, removed on Close.
	Root string
	// Addr is the address to listen on; "" means a free loopback port.
	Addr string
	// Authorize, when set, also admits a request whose basic-auth
	// credentials it accepts (gitauth.go).
	Authorize func(user, password string) bool
}

// NewGitServer starts a server for one test and stops it when the test ends.
// It fails the test when Debian's git is not installed.
func NewGitServer(t testing.TB, opts GitServerOptions) *GitServer {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	s, err := StartGitServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartGitServer starts a server outside of a test (the demo); Close stops it.
func StartGitServer(opts GitServerOptions) (*GitServer, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, errors.New("testenv: git not found on PATH: install Debian's git (apt-get install git)")
	}
	s := &GitServer{Root: opts.Root, username: opts.Username, password: opts.Password, git: git, authorize: opts.Authorize}
	if s.Root == "" {
		if s.Root, err = os.MkdirTemp("", "ferry-git-"); err != nil {
			return nil, fmt.Errorf("testenv: git server: %w", err)
		}
		s.ownRoot = true
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testenv: git server: %w", err)
	}
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.Root,
		},
	}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="ferry-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		// http-backend refuses pushes from anonymous users unless
		// http.receivepack is set; REMOTE_USER marks the request as authenticated.
		h := *backend
		h.Env = append(h.Env, "REMOTE_USER=ferry-test")
		h.ServeHTTP(w, r)
	})}}
	s.srv.Start()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server, and removes its repositories when it made the
// directory they live in.
func (s *GitServer) Close() {
	s.srv.Close()
	if s.ownRoot {
		os.RemoveAll(s.Root)
	}
}

// Requests returns how many HTTP requests the server has answered, for tests
// that assert an operation made no round trip.
func (s *GitServer) Requests() int64 { return s.requests.Load() }

// CreateRepo makes an empty bare repository name.git whose default branch is
// main, and returns its clone URL (without credentials).
func (s *GitServer) CreateRepo(t testing.TB, name string) string {
	t.Helper()
	url, err := s.CreateBareRepo(name)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// CreateBareRepo is CreateRepo outside of a test.
func (s *GitServer) CreateBareRepo(name string) (string, error) {
	dir := filepath.Join(s.Root, name+".git")
	if _, err := Git("", "init", "--quiet", "--bare", "--initial-branch=main", dir); err != nil {
		return "", err
	}
	if _, err := Git(dir, "config", "http.receivepack", "true"); err != nil {
		return "", err
	}
	return s.URL + "/" + name + ".git", nil
}

// RepoDir returns the on-disk path of a bare repository the server holds.
func (s *GitServer) RepoDir(name string) string {
	return filepath.Join(s.Root, name+".git")
}

// runGit runs Debian's git with a clean, deterministic environment and fails
// the test with git's output when it fails.
func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := Git(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Git runs the git CLI in dir with an environment that ignores the user's and
// the system's configuration, and returns its trimmed output.
func Git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Ferry Test", "GIT_AUTHOR_EMAIL=test@ferry.invalid",
		"GIT_COMMITTER_NAME=Ferry Test", "GIT_COMMITTER_EMAIL=test@ferry.invalid",
		"GIT_TERMINAL_PROMPT=0",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// WorkTree is a non-bare clone that a test edits, commits in and pushes from
// with the git CLI, as a user would.
type WorkTree struct {
	Dir    string
	remote string
}

// Clone clones a repository of this server into a fresh directory, with the
// server's credentials, if any, so that Push works.
func (s *GitServer) Clone(t testing.TB, name string) *WorkTree {
	t.Helper()
	remote := s.URL + "/" + name + ".git"
	if s.username != "" {
		remote = strings.Replace(remote, "http://", "http://"+s.username+":"+s.password+"@", 1)
	}
	dir := t.TempDir()
	runGit(t, "", "clone", "--quiet", remote, dir)
	runGit(t, dir, "checkout", "--quiet", "-B", "main")
	return &WorkTree{Dir: dir, remote: remote}
}

// Write writes a file, relative to the work tree, creating its directories.
func (w *WorkTree) Write(t testing.TB, path, content string) {
	t.Helper()
	full := filepath.Join(w.Dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Commit stages everything and commits it, returning the new commit's SHA.
func (w *WorkTree) Commit(t testing.TB, message string) string {
	t.Helper()
	runGit(t, w.Dir, "add", "--all")
	runGit(t, w.Dir, "commit", "--quiet", "--allow-empty", "-m", message)
	return runGit(t, w.Dir, "rev-parse", "HEAD")
}

// Push pushes the current branch to main on the server.
func (w *WorkTree) Push(t testing.TB) {
	t.Helper()
	runGit(t, w.Dir, "push", "--quiet", w.remote, "HEAD:refs/heads/main")
}
