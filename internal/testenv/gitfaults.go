package testenv

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// GitFault is how a FaultyGit answers.
type GitFault int

const (
	// GitUp forwards every request to the Git server.
	GitUp GitFault = iota
	// GitError answers every request 500 Internal Server Error.
	GitError
	// GitHang holds every request until the fault changes (then it is
	// forwarded) or its client gives up.
	GitHang
)

// FaultyGit is a proxy in front of a GitServer that fails on demand, as a
// Git host in trouble does. Point the client at URL instead of the server's.
type FaultyGit struct {
	// URL is the proxy's base URL: URL + "/name.git" is a repository.
	URL string

	mu      sync.Mutex
	fault   GitFault
	changed chan struct{} // closed when the fault changes
	errors  atomic.Int64
	hung    atomic.Int64
}

// Faulty starts a proxy in front of the server, answering as GitUp, and
// stops it when the test ends.
func (s *GitServer) Faulty(t testing.TB) *FaultyGit {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &FaultyGit{changed: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		fault, changed := f.fault, f.changed
		f.mu.Unlock()
		switch fault {
		case GitError:
			f.errors.Add(1)
			http.Error(w, "injected fault", http.StatusInternalServerError)
			return
		case GitHang:
			f.hung.Add(1)
			select {
			case <-changed:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.Set(GitUp) // releases hung requests, so Close does not wait on them
		srv.Close()
	})
	f.URL = srv.URL
	return f
}

// Set changes how the proxy answers from now on; requests it holds are
// released.
func (f *FaultyGit) Set(fault GitFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
	close(f.changed)
	f.changed = make(chan struct{})
}

// Errors is how many requests the proxy answered 500.
func (f *FaultyGit) Errors() int64 { return f.errors.Load() }

// Hung is how many requests the proxy has held.
func (f *FaultyGit) Hung() int64 { return f.hung.Load() }

// Reset moves the work tree's current branch to rev, dropping the commits
// after it (git reset --hard): with ForcePush, a rewrite of history.
func (w *WorkTree) Reset(t testing.TB, rev string) {
	t.Helper()
	runGit(t, w.Dir, "reset", "--quiet", "--hard", rev)
}

// ForcePush pushes the current branch to main on the server, replacing
// whatever main held.
func (w *WorkTree) ForcePush(t testing.TB) {
	t.Helper()
	runGit(t, w.Dir, "push", "--quiet", "--force", w.remote, "HEAD:refs/heads/main")
}

// ImportCommits writes a chain of commits into repository name on the
// server, without a push: the first on top of parent, each changing the
// files of one element of edits (path → content), all with one `git
// fast-import`. The chain is kept reachable by refs/ferry-test/imported;
// MoveBranch publishes its commits. It returns their SHAs in order.
func (s *GitServer) ImportCommits(name, parent string, edits []map[string]string) ([]string, error) {
	var stream bytes.Buffer
	data := func(b string) { fmt.Fprintf(&stream, "data %d\n%s\n", len(b), b) }
	for i, files := range edits {
		fmt.Fprintf(&stream, "commit refs/ferry-test/imported\nmark :%d\ncommitter Ferry Test <test@ferry.invalid> %d +0000\n", i+1, 1700000000+i)
		data(fmt.Sprintf("import %d", i+1))
		if i == 0 {
			fmt.Fprintf(&stream, "from %s\n", parent)
		}
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(&stream, "M 100644 inline %s\n", p)
			data(files[p])
		}
	}
	marks := filepath.Join(s.RepoDir(name), "ferry-test-marks")
	defer os.Remove(marks)
	cmd := exec.Command(s.git, "fast-import", "--quiet", "--export-marks="+marks)
	cmd.Dir = s.RepoDir(name)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdin = &stream
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("import commits into %s: %w\n%s", name, err, out)
	}
	raw, err := os.ReadFile(marks)
	if err != nil {
		return nil, fmt.Errorf("import commits into %s: %w", name, err)
	}
	shas := make([]string, len(edits))
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var mark int
		var sha string
		if _, err := fmt.Sscanf(line, ":%d %s", &mark, &sha); err != nil || mark < 1 || mark > len(edits) {
			return nil, fmt.Errorf("import commits into %s: marks line %q", name, line)
		}
		shas[mark-1] = sha
	}
	return shas, nil
}

// MoveBranch points branch of repository name at sha, a commit the server
// already holds, as receive-pack does at the end of a push: the loose ref is
// written to a lock file and renamed over the ref. It costs no process, so a
// test can publish hundreds of pushes a second; the commits are uploaded
// beforehand (ImportCommits).
func (s *GitServer) MoveBranch(name, branch, sha string) error {
	ref := filepath.Join(s.RepoDir(name), "refs", "heads", branch)
	lock := ref + ".lock"
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("move %s of %s: %w", branch, name, err)
	}
	if _, err := fmt.Fprintln(f, sha); err != nil {
		f.Close()
		os.Remove(lock)
		return fmt.Errorf("move %s of %s: %w", branch, name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(lock)
		return fmt.Errorf("move %s of %s: %w", branch, name, err)
	}
	if err := os.Rename(lock, ref); err != nil {
		return fmt.Errorf("move %s of %s: %w", branch, name, err)
	}
	return nil
}
