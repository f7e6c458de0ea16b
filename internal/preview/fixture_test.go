package preview

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/githubtest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

const (
	writeToken = "ghs_CANARYwrite0123456789"
	readToken  = "ghs_CANARYread0123456789"
	apiToken   = "ghs_CANARYapi0123456789"
	nsPrefix   = "pv"
)

var environments = []string{"dev", "staging", "prod"}

// renderCall is one Render: the commit the tree was checked out at, and
// the environment path.
type renderCall struct{ sha, path string }

// countingRenderer is the real renderer, counting calls, and holding the
// renders of gated paths until the gate opens or their context ends.
type countingRenderer struct {
	r *render.Renderer

	mu      sync.Mutex
	calls   []renderCall
	gate    map[string]chan struct{} // path -> closed to let renders through
	entered chan renderCall          // told each gated render, when set
}

func (c *countingRenderer) Render(ctx context.Context, req render.Request) (*render.Result, error) {
	call := renderCall{sha: filepath.Base(req.Root), path: req.Path}
	c.mu.Lock()
	c.calls = append(c.calls, call)
	gate, entered := c.gate[req.Path], c.entered
	c.mu.Unlock()
	if gate != nil {
		if entered != nil {
			entered <- call
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, fmt.Errorf("render %s: %w", req.Path, ctx.Err())
		}
	}
	return c.r.Render(ctx, req)
}

// at returns the paths rendered at commit sha, in order.
func (c *countingRenderer) at(sha string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, call := range c.calls {
		if call.sha == sha {
			out = append(out, call.path)
		}
	}
	return out
}

// hold gates renders of path; the returned func opens the gate.
func (c *countingRenderer) hold(path string) (entered <-chan renderCall, release func()) {
	ch, gate := make(chan renderCall, 16), make(chan struct{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate == nil {
		c.gate = map[string]chan struct{}{}
	}
	c.gate[path], c.entered = gate, ch
	return ch, sync.OnceFunc(func() { close(gate) })
}

// fixture is a model repository in the DESIGN layout (dev, staging, prod)
// on a Git server that records credentials, a test GitHub, and a running
// Pool over them.
type fixture struct {
	t       testing.TB
	git     *testenv.GitServer
	creds   *testenv.CredentialLog
	wt      *testenv.WorkTree
	main    string
	gh      *githubtest.Server
	src     *source.Repository
	renders *countingRenderer
	repo    Repository
	pool    *Pool
}

func newFixture(t testing.TB, files map[string]string) *fixture {
	t.Helper()
	f := &fixture{t: t, creds: testenv.NewCredentialLog(writeToken, readToken)}
	f.git = testenv.NewGitServer(t, testenv.GitServerOptions{Username: "seed", Password: "seed-password", Authorize: f.creds.Authorize})
	url := f.git.CreateRepo(t, "models")
	f.wt = f.git.Clone(t, "models")
	f.wt.WriteAll(t, testenv.ModelRepo(nsPrefix, environments...))
	f.wt.WriteAll(t, files)
	f.main = f.wt.Commit(t, "models")
	f.wt.Push(t)

	src, err := source.New(source.Options{DataDir: t.TempDir(), Author: object.Signature{Name: "Ferry", Email: "ferry@example.com"}})
	require.NoError(t, err)
	f.src, err = src.Open(source.RepoOptions{Name: "models", URL: url, Branch: "main", Auth: source.Auth{Token: writeToken}, AllowLocal: true})
	require.NoError(t, err)
	pulls, err := f.src.PullRequests(source.Auth{Token: readToken})
	require.NoError(t, err)
	r, err := render.New(render.Options{})
	require.NoError(t, err)
	f.renders = &countingRenderer{r: r}

	f.gh = githubtest.New(t, githubtest.Options{Tokens: []string{apiToken}})
	client, err := promote.NewClient(promote.ClientOptions{APIURL: f.gh.URL, Token: apiToken})
	require.NoError(t, err)
	f.repo = Repository{Name: "models", Branch: "main", Source: pulls, GitHub: client.Repository(githubtest.DefaultOwner, githubtest.DefaultRepo)}
	for _, env := range environments {
		f.repo.Environments = append(f.repo.Environments, Environment{Name: env, Path: "environments/" + env, Policy: &apply.Policy{}})
	}
	return f
}

// start runs a Pool over the fixture until the test ends.
func (f *fixture) start(opts Options) {
	f.t.Helper()
	opts.Repositories = []Repository{f.repo}
	opts.Renderer = f.renders
	if opts.Delay == 0 {
		opts.Delay = 20 * time.Millisecond
	}
	pool, err := New(opts)
	require.NoError(f.t, err)
	f.pool = pool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pool.Run(ctx); close(done) }()
	f.t.Cleanup(func() { cancel(); <-done })
}

// openPR opens a pull request changing files on main's head, and returns
// its number and head.
func (f *fixture) openPR(files map[string]string) (int, string) {
	f.t.Helper()
	n := f.gh.OpenPR(fmt.Sprintf("feature-%d", len(f.gh.PullRequests())+1), "main", "a change", "")
	return n, f.push(n, files)
}

// push commits files on pull request n's branch and points refs/pull/N/head
// at the commit, as GitHub does for a push to the branch (or the fork).
func (f *fixture) push(n int, files map[string]string) string {
	f.t.Helper()
	branch := fmt.Sprintf("pr-%d", n)
	if _, err := testenv.Git(f.wt.Dir, "checkout", "-q", branch); err != nil {
		_, err = testenv.Git(f.wt.Dir, "checkout", "-q", "-b", branch, f.main)
		require.NoError(f.t, err)
	}
	f.wt.WriteAll(f.t, files)
	head := f.wt.Commit(f.t, "change")
	_, err := testenv.Git(f.wt.Dir, "push", "-q", "--force", "origin", fmt.Sprintf("HEAD:refs/pull/%d/head", n))
	require.NoError(f.t, err)
	_, err = testenv.Git(f.wt.Dir, "checkout", "-q", "main")
	require.NoError(f.t, err)
	return head
}

func (f *fixture) notify(n int, action, head string) {
	f.t.Helper()
	require.True(f.t, f.pool.Notify(Event{Repository: "models", Number: n, Action: action, BaseRef: "main", HeadSHA: head}))
}

// eventually polls cond every 10 ms for up to 30 s.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status returns the newest ferry/preview status on sha.
func (f *fixture) status(sha string) (githubtest.Status, bool) {
	var out githubtest.Status
	found := false
	for _, s := range f.gh.Statuses(sha) {
		if s.Context == promote.PreviewContext {
			out, found = s, true
		}
	}
	return out, found
}

// waitPosted waits for the ferry/preview status on head and returns pull
// request n's comments.
func (f *fixture) waitPosted(n int, head string) []githubtest.Comment {
	f.t.Helper()
	f.eventually("the ferry/preview status on "+head, func() bool { _, ok := f.status(head); return ok })
	return f.gh.Comments(n)
}

// pin is dev's models.yaml pinning version.
func pin(version string) map[string]string {
	return map[string]string{"environments/dev/models.yaml": testenv.ModelPin(version)}
}

func lines(s string) []string { return strings.Split(s, "\n") }

// runGit runs git in the fixture's work tree.
func runGit(f *fixture, args ...string) (string, error) { return testenv.Git(f.wt.Dir, args...) }

// outcomes returns how many previews ended with outcome.
func (f *fixture) outcomes(outcome string) int {
	return int(testutil.ToFloat64(f.pool.metrics.outcomes.WithLabelValues(outcome)))
}
