package engine

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// The engine talks to its parts through these interfaces, each cut to the
// calls it makes, so that its decisions can be tested without a cluster, a
// Git server or GitHub. cmd/ferry hands it the real ones.

// gitRepo is a tracked repository; *source.Repository is one.
type gitRepo interface {
	Head(ctx context.Context) (string, error)
	Fetch(ctx context.Context) (string, error)
	Checkout(ctx context.Context, sha string) (*source.Tree, error)
	Changed(ctx context.Context, from, to string) (*source.Changes, error)
	ReadFile(ctx context.Context, sha, path string) ([]byte, error)
	Parents(ctx context.Context, sha string) ([]string, error)
	FetchBranch(ctx context.Context, branch string) (string, error)
	Commit(ctx context.Context, c source.Change) (string, error)
	Push(ctx context.Context, branch string) error
}

// applier is an environment's cluster; *apply.Applier is one.
type applier interface {
	Revision(ctx context.Context, inv apply.Inventory) (string, error)
	Apply(ctx context.Context, req apply.Request) (*apply.ChangeSet, error)
	Wait(ctx context.Context, inv apply.Inventory, objs []*unstructured.Unstructured, opts apply.WaitOptions) (*apply.HealthReport, error)
	RunTests(ctx context.Context, req apply.TestRequest) (*apply.TestReport, error)
	Verification(ctx context.Context, inv apply.Inventory) (*apply.Verification, error)
	SaveVerification(ctx context.Context, inv apply.Inventory, v apply.Verification) error
	Forget(inv apply.Inventory)
}

// renderer builds an environment; *render.Renderer is one.
type renderer interface {
	Render(ctx context.Context, req render.Request) (*render.Result, error)
}

// forge is a repository's GitHub; *promote.GitHub is one.
type forge interface {
	SetStatus(ctx context.Context, s promote.CommitStatus) error
	RequiredChecks(ctx context.Context, sha string, names []string) (promote.Checks, error)
	EnsurePullRequest(ctx context.Context, pr promote.PullRequest) (promote.PRResult, error)
}

// ring is the scale-out membership (*ring.Ring is one): which repositories
// this replica owns, and whether it may mutate them yet.
type ring interface {
	May(key string) (owned bool, after time.Duration)
	Fence(ctx context.Context) context.Context
	Changed() <-chan struct{}
}

var (
	_ gitRepo  = (*source.Repository)(nil)
	_ applier  = (*apply.Applier)(nil)
	_ renderer = (*render.Renderer)(nil)
	_ forge    = (*promote.GitHub)(nil)
)
