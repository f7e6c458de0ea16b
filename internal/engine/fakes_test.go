package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// Fakes of the engine's parts, for tests of its decisions that need no
// cluster, Git server or GitHub. Each records the calls it gets.

type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *calls) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// fakeGit is a repository whose head a test moves; every commit has the
// same tree, in a temporary directory.
type fakeGit struct {
	calls
	dir     string
	mu      sync.Mutex
	head    string
	changed []string // what Changed reports
	files   map[string]string
	pushed  []string
	pushErr []error // returned by Push, one per call, before it succeeds
}

func newFakeGit(t *testing.T, head string) *fakeGit {
	return &fakeGit{dir: t.TempDir(), head: head, files: map[string]string{}}
}

func (g *fakeGit) setHead(sha string, changed ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.head, g.changed = sha, changed
}

func (g *fakeGit) Head(context.Context) (string, error) {
	g.add("Head")
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.head, nil
}

func (g *fakeGit) Fetch(ctx context.Context) (string, error) { return g.Head(ctx) }

func (g *fakeGit) Checkout(_ context.Context, sha string) (*source.Tree, error) {
	g.add("Checkout")
	return &source.Tree{Dir: g.dir, SHA: sha}, nil
}

func (g *fakeGit) Changed(context.Context, string, string) (*source.Changes, error) {
	g.add("Changed")
	g.mu.Lock()
	defer g.mu.Unlock()
	return &source.Changes{Paths: g.changed}, nil
}

func (g *fakeGit) ReadFile(_ context.Context, sha, path string) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	content, ok := g.files[sha+":"+path]
	if !ok {
		content, ok = g.files[path]
	}
	if !ok {
		return nil, fmt.Errorf("%s@%s: %w", path, sha, fs.ErrNotExist)
	}
	return []byte(content), nil
}

func (g *fakeGit) Parents(context.Context, string) ([]string, error) { return nil, nil }

func (g *fakeGit) FetchBranch(context.Context, string) (string, error) {
	g.add("FetchBranch")
	return "", nil
}

func (g *fakeGit) Commit(_ context.Context, c source.Change) (string, error) {
	g.add("Commit")
	return "promotion-" + c.Branch, nil
}

func (g *fakeGit) Push(_ context.Context, branch string) error {
	g.add("Push")
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pushErr) > 0 {
		err := g.pushErr[0]
		g.pushErr = g.pushErr[1:]
		return err
	}
	g.pushed = append(g.pushed, branch)
	return nil
}

// fakeCluster applies nothing and is healthy unless told otherwise.
type fakeCluster struct {
	calls
	mu           sync.Mutex
	revision     string
	verification *apply.Verification
	gate         chan struct{} // when set, Wait blocks until it is closed or its context ends
	unhealthy    bool
	failTests    string // the name of a test that fails
	testsErr     []error
	// listed, when set, is the health Apply reports it listed (as an apply
	// that changed nothing does).
	listed *apply.HealthReport
	// applyErr are errors Apply returns, one per call, before it succeeds.
	applyErr []error
	// applyGate, when set, holds every Apply until it is closed.
	applyGate chan struct{}
}

func (c *fakeCluster) Revision(context.Context, apply.Inventory) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revision, nil
}

func (c *fakeCluster) Apply(_ context.Context, req apply.Request) (*apply.ChangeSet, error) {
	c.add("Apply")
	c.mu.Lock()
	gate := c.applyGate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.applyErr) > 0 {
		err := c.applyErr[0]
		c.applyErr = c.applyErr[1:]
		return &apply.ChangeSet{}, err
	}
	c.revision = req.Revision
	return &apply.ChangeSet{Health: c.listed}, nil
}

func (c *fakeCluster) Forget(apply.Inventory) { c.add("Forget") }

func (c *fakeCluster) Wait(ctx context.Context, _ apply.Inventory, _ []*unstructured.Unstructured, _ apply.WaitOptions) (*apply.HealthReport, error) {
	c.add("Wait")
	c.mu.Lock()
	gate, unhealthy := c.gate, c.unhealthy
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return &apply.HealthReport{}, ctx.Err()
		}
	}
	if unhealthy {
		return &apply.HealthReport{}, errors.New("Deployment/ns/m: InProgress")
	}
	return &apply.HealthReport{}, nil
}

func (c *fakeCluster) RunTests(_ context.Context, req apply.TestRequest) (*apply.TestReport, error) {
	c.add("RunTests")
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.testsErr) > 0 {
		err := c.testsErr[0]
		c.testsErr = c.testsErr[1:]
		return nil, err
	}
	r := &apply.TestReport{}
	for _, j := range req.Jobs {
		test := j.GetLabels()[render.LabelTest]
		res := apply.TestResult{Model: j.GetLabels()[render.LabelModel], Test: test, Passed: test != c.failTests}
		if !res.Passed {
			res.Reason = "exit code 1"
		}
		r.Results = append(r.Results, res)
	}
	return r, nil
}

func (c *fakeCluster) Verification(context.Context, apply.Inventory) (*apply.Verification, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verification, nil
}

func (c *fakeCluster) SaveVerification(_ context.Context, _ apply.Inventory, v apply.Verification) error {
	c.add("SaveVerification")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verification = &v
	return nil
}

// fakeRenderer returns each environment's models at the version a test sets.
type fakeRenderer struct {
	calls
	mu       sync.Mutex
	versions map[string]string // environment path -> fraud-detector's version
	tests    bool              // fraud-detector declares a smoke test
	checks   []string          // fraud-detector's required checks
	fail     map[string]error  // environment path -> the render's error
}

func (r *fakeRenderer) breakPath(path string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = map[string]error{path: err}
}

func (r *fakeRenderer) set(path, version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versions[path] = version
}

func (r *fakeRenderer) Render(_ context.Context, req render.Request) (*render.Result, error) {
	r.add("Render:" + req.Path)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail[req.Path]; err != nil {
		return nil, err
	}
	v := r.versions[req.Path]
	m := &render.Model{}
	m.Name, m.Namespace = "fraud-detector", "ml"
	m.Spec.Version = v
	m.Spec.Artifact.URI = "s3://models/fraud/" + v
	if len(r.checks) > 0 {
		m.Spec.Promotion = &render.Promotion{RequiredChecks: r.checks}
	}
	res := &render.Result{Models: []*render.Model{m}, Inputs: []string{req.Path + "/models.yaml"}}
	if r.tests {
		res.Tests = []render.Test{{Model: m.Name, Namespace: "ml", Version: v, Name: "smoke", Image: "smoke:1", Timeout: time.Minute}}
	}
	return res, nil
}

// fakeGitHub keeps statuses, checks and pull requests in memory.
type fakeGitHub struct {
	calls
	mu       sync.Mutex
	statuses []promote.CommitStatus
	checks   map[string]string // name -> state
	prs      []promote.PullRequest
	prErr    []error
}

func (g *fakeGitHub) SetStatus(_ context.Context, s promote.CommitStatus) error {
	g.add("SetStatus")
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statuses = append(g.statuses, s)
	return nil
}

func (g *fakeGitHub) RequiredChecks(_ context.Context, _ string, names []string) (promote.Checks, error) {
	g.add("RequiredChecks")
	g.mu.Lock()
	defer g.mu.Unlock()
	var out promote.Checks
	for _, n := range names {
		state := g.checks[n]
		if state == "" {
			state = promote.CheckMissing
		}
		out = append(out, promote.Check{Name: n, State: state})
	}
	return out, nil
}

func (g *fakeGitHub) setCheck(name, state string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks[name] = state
}

func (g *fakeGitHub) EnsurePullRequest(_ context.Context, pr promote.PullRequest) (promote.PRResult, error) {
	g.add("EnsurePullRequest")
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.prErr) > 0 {
		err := g.prErr[0]
		g.prErr = g.prErr[1:]
		return promote.PRResult{}, err
	}
	g.prs = append(g.prs, pr)
	return promote.PRResult{Number: 1, Action: promote.PRCreated}, nil
}

func (g *fakeGitHub) lastStatus(context string) promote.CommitStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.statuses) - 1; i >= 0; i-- {
		if g.statuses[i].Context == context {
			return g.statuses[i]
		}
	}
	return promote.CommitStatus{}
}

// pinFile is a models.yaml pinning fraud-detector.
func pinFile(version string) string {
	return strings.Join([]string{
		"apiVersion: ferry.dev/v1alpha1", "kind: Model", "metadata:", "  name: fraud-detector", "spec:",
		`  version: "` + version + `"`, "  artifact:", "    uri: s3://models/fraud/" + version, "",
	}, "\n")
}
