package preview

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/engine"
)

// appliedCluster is a cluster that applies nothing, is always healthy, and
// remembers each revision applied, by environment.
type appliedCluster struct {
	mu      sync.Mutex
	applied map[string][]string
}

func (c *appliedCluster) revisions(env string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.applied[env]...)
}

func (c *appliedCluster) Revision(_ context.Context, inv apply.Inventory) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if revs := c.applied[inv.Environment]; len(revs) > 0 {
		return revs[len(revs)-1], nil
	}
	return "", nil
}

func (c *appliedCluster) Apply(_ context.Context, req apply.Request) (*apply.ChangeSet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied == nil {
		c.applied = map[string][]string{}
	}
	c.applied[req.Inventory.Environment] = append(c.applied[req.Inventory.Environment], req.Revision)
	return &apply.ChangeSet{}, nil
}

func (c *appliedCluster) Wait(context.Context, apply.Inventory, []*unstructured.Unstructured, apply.WaitOptions) (*apply.HealthReport, error) {
	return &apply.HealthReport{}, nil
}

func (c *appliedCluster) RunTests(context.Context, apply.TestRequest) (*apply.TestReport, error) {
	return &apply.TestReport{}, nil
}

func (c *appliedCluster) Verification(context.Context, apply.Inventory) (*apply.Verification, error) {
	return nil, nil
}

func (c *appliedCluster) Forget(apply.Inventory) {}

func (c *appliedCluster) SaveVerification(context.Context, apply.Inventory, apply.Verification) error {
	return nil
}

func TestAPreviewBlockedInRenderDoesNotDelayAReconcile(t *testing.T) {
	f := newFixture(t, nil)
	cluster := &appliedCluster{}
	spec := engine.Repository{Name: "models", Source: f.src, Branch: "main"}
	for _, env := range environments {
		spec.Environments = append(spec.Environments, engine.Environment{Name: env, Path: "environments/" + env, Applier: cluster})
	}
	// One engine worker: were previews run on the engine's workers, a
	// blocked one would hold it.
	eng, err := engine.New(engine.Options{Repositories: []engine.Repository{spec}, Renderer: f.renders.r, Workers: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { eng.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	f.eventually("dev applied at main", func() bool { return len(cluster.revisions("dev")) > 0 })
	f.start(Options{})

	entered, release := f.renders.hold("environments/dev")
	defer release()
	n, head := f.openPR(pin("1.1.0"))
	f.notify(n, "opened", head)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the preview never started rendering")
	}

	f.wt.WriteAll(t, pin("1.3.0"))
	next := f.wt.Commit(t, "dev 1.3.0")
	f.wt.Push(t)
	require.True(t, eng.Notify("models"))
	f.eventually("dev applied at the new main while the preview is blocked", func() bool {
		revs := cluster.revisions("dev")
		return revs[len(revs)-1] == next
	})
	_, posted := f.status(head)
	assert.False(t, posted, "the preview was still blocked in render")

	release()
	comments := f.waitPosted(n, head)
	require.Len(t, comments, 1)
	assert.Contains(t, comments[0].Body, "→ **<code>1.1.0</code>**")
}
