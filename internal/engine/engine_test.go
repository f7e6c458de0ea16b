package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-gitops/ferry/source"
)

func (h *harness) deployment(env string) *appsv1.Deployment {
	h.t.Helper()
	d, err := cluster.Client.AppsV1().Deployments(h.prefix+"-"+env).Get(h.t.Context(), "fraud-detector", metav1.GetOptions{})
	require.NoError(h.t, err)
	return d
}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func idleAt(rev string) func(Status) bool {
	return func(s Status) bool { return s.Phase == Idle && s.Revision == rev && s.Health == HealthHealthy }
}

func TestEveryEnvironmentReachesTheHeadAndANewPinRollsOut(t *testing.T) {
	h := newHarness(t)
	h.start()
	first, err := h.eng.opts.Repositories[0].Source.Head(t.Context())
	require.NoError(t, err)
	for _, env := range envNames {
		h.eventually(env, idleAt(first), "reconciled to the first commit")
	}
	assert.True(t, h.eng.Ready())

	bump := h.commit(map[string]string{"environments/dev/models.yaml": pin("1.1.0")}, "bump fraud-detector to 1.1.0 in dev")
	require.True(t, h.eng.Notify(h.repo))
	h.eventually("dev", idleAt(bump), "dev reconciled to the bump")
	d := h.deployment("dev")
	assert.Equal(t, "1.1.0", d.Annotations["ferry.dev/model-version"])
	assert.True(t, available(d), "the new version is Available")
	assert.Equal(t, "1.0.0", h.deployment("staging").Annotations["ferry.dev/model-version"])
	assert.False(t, h.eng.Notify("not-tracked"))
}

func TestACommitTouchingNoInputRendersNothing(t *testing.T) {
	h := newHarness(t)
	h.start()
	head, _ := h.eng.opts.Repositories[0].Source.Head(t.Context())
	for _, env := range envNames {
		h.eventually(env, idleAt(head), "first reconcile")
	}
	renders := h.counter("ferry_renders_total")
	applied := h.counter("ferry_objects_applied_total")

	docs := h.commit(map[string]string{"README.md": "# models\n\nHow to promote.\n"}, "docs only")
	h.eng.Notify(h.repo)
	for _, env := range envNames {
		h.eventually(env, func(s Status) bool { return s.Revision == docs }, "moved to the docs commit without work")
	}
	assert.Equal(t, renders, h.counter("ferry_renders_total"), "no render")
	assert.Equal(t, applied, h.counter("ferry_objects_applied_total"), "no apply")
	assert.Equal(t, 3.0, h.counter("ferry_reconcile_skipped_total"))
}

func TestABurstOfPushesLeadsToOneFetchAndOneReconcileAtTheNewestHead(t *testing.T) {
	h := newHarness(t)
	h.start()
	head, _ := h.eng.opts.Repositories[0].Source.Head(t.Context())
	for _, env := range envNames {
		h.eventually(env, idleAt(head), "first reconcile")
	}
	fetches := h.counter("ferry_git_fetch_duration_seconds")
	reconciles := h.counter("ferry_reconcile_total", "environment", "dev")

	var newest string
	for i := 1; i <= 10; i++ {
		newest = h.commit(map[string]string{"environments/dev/models.yaml": pin("2.0." + string(rune('0'+i%10)))}, "bump")
	}
	for range 10 {
		h.eng.Notify(h.repo)
	}
	h.eventually("dev", idleAt(newest), "dev at the newest head")
	assert.Equal(t, fetches+1, h.counter("ferry_git_fetch_duration_seconds"), "one fetch")
	assert.Equal(t, reconciles+1, h.counter("ferry_reconcile_total", "environment", "dev"), "one reconcile")
	assert.Equal(t, "2.0.0", h.deployment("dev").Annotations["ferry.dev/model-version"])
}

func TestABrokenEnvironmentFailsAloneAndRecovers(t *testing.T) {
	h := newHarness(t)
	h.start()
	head, _ := h.eng.opts.Repositories[0].Source.Head(t.Context())
	for _, env := range envNames {
		h.eventually(env, idleAt(head), "first reconcile")
	}

	broken := h.commit(map[string]string{
		"environments/staging/kustomization.yaml": "namespace: " + h.prefix + "-staging\nresources: [namespace.yaml, ../../models/missing]\n",
		"environments/dev/models.yaml":            pin("1.2.0"),
	}, "break staging, bump dev")
	h.eng.Notify(h.repo)
	failed := h.eventually("staging", func(s Status) bool { return s.Phase == Failed }, "staging failed")
	assert.Contains(t, failed.LastError, "render environments/staging")
	assert.Contains(t, failed.LastError, "models/missing")
	h.eventually("dev", idleAt(broken), "dev is not blocked by staging")
	assert.Equal(t, Idle, h.status("prod").Phase)
	assert.Equal(t, HealthHealthy, h.status("prod").Health)

	fixed := h.commit(map[string]string{
		"environments/staging/kustomization.yaml": "namespace: " + h.prefix + "-staging\nresources: [namespace.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n",
	}, "fix staging")
	h.eng.Notify(h.repo)
	s := h.eventually("staging", idleAt(fixed), "staging recovered")
	assert.Empty(t, s.LastError)
	require.NotEmpty(t, s.History)
	assert.Equal(t, "failure", s.History[len(s.History)-2].Result)
}

func TestDriftIsCorrectedByAResync(t *testing.T) {
	h := newHarness(t)
	h.start()
	head, _ := h.eng.opts.Repositories[0].Source.Head(t.Context())
	h.eventually("prod", idleAt(head), "first reconcile")

	d := h.deployment("prod")
	d.Spec.Template.Spec.Containers[0].Image = "registry.example/hacked:0"
	_, err := cluster.Client.AppsV1().Deployments(h.prefix+"-prod").Update(t.Context(), d, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)

	h.eng.Resync()
	h.eventually("prod", func(s Status) bool {
		return strings.Contains(s.Summary, "1 configured") && s.Phase == Idle
	}, "drift put back")
	assert.Equal(t, "registry.example/mlserver:1.6", h.deployment("prod").Spec.Template.Spec.Containers[0].Image)
}

func TestARestartedEngineKeepsOwnership(t *testing.T) {
	h := newHarness(t)
	h.start()
	extra := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	grown := h.commit(map[string]string{
		"environments/dev/kustomization.yaml": "namespace: " + h.prefix + "-dev\nresources: [namespace.yaml, extra.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n",
		"environments/dev/extra.yaml":         extra,
	}, "add settings")
	h.eng.Notify(h.repo)
	h.eventually("dev", idleAt(grown), "first reconcile")
	uid := h.deployment("dev").UID

	h.start() // a new process: new engine, appliers and clones' handles
	h.eventually("dev", idleAt(grown), "the restarted engine knows the revision")
	assert.Equal(t, "6 unchanged", h.status("dev").Summary)
	assert.Equal(t, uid, h.deployment("dev").UID, "no duplicate, no recreate")

	// Prune still works: drop the model from dev.
	gone := h.commit(map[string]string{
		"environments/dev/kustomization.yaml": "namespace: " + h.prefix + "-dev\nresources: [namespace.yaml, extra.yaml]\n",
	}, "drop the model from dev")
	h.eng.Notify(h.repo)
	s := h.eventually("dev", idleAt(gone), "pruned")
	assert.Equal(t, "2 deleted, 4 unchanged", s.Summary)
	_, err := cluster.Client.AppsV1().Deployments(h.prefix+"-dev").Get(context.Background(), "fraud-detector", metav1.GetOptions{})
	assert.Error(t, err, "the Deployment was pruned")
}

func TestAnEnvironmentThatNeverBecomesHealthyDoesNotHoldUpTheOthers(t *testing.T) {
	h := newHarness(t)
	h.start(func(o *Options) { o.Workers = 1; o.HealthTimeout = 3 * time.Minute; o.ShutdownGrace = time.Second })
	head, _ := h.eng.opts.Repositories[0].Source.Head(t.Context())
	for _, env := range envNames {
		h.eventually(env, idleAt(head), "first reconcile")
	}

	// dev gains a Deployment no node can run; prod gets a new version.
	stuck := h.commit(map[string]string{
		"environments/dev/kustomization.yaml": "namespace: " + h.prefix + "-dev\nresources: [namespace.yaml, stuck.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n",
		"environments/dev/stuck.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {pool: does-not-exist}
      containers: [{name: c, image: "registry.example/x:1"}]
`,
		"environments/prod/models.yaml": pin("1.5.0"),
	}, "a stuck dev, a new prod")
	h.eng.Notify(h.repo)
	h.eventually("prod", idleAt(stuck), "prod rolls out while dev waits for a health it will never reach")
	assert.Equal(t, Waiting, h.status("dev").Phase)
}

func TestAHungGitServerIsBoundedAndShownInTheStatus(t *testing.T) {
	hung := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hung }))
	defer srv.Close()
	defer close(hung)

	h := newHarness(t)
	h.start(func(o *Options) {
		o.FetchTimeout = 300 * time.Millisecond
		src, err := source.New(source.Options{DataDir: t.TempDir(), Author: object.Signature{Name: "F", Email: "f@example.com"}})
		require.NoError(t, err)
		repo, err := src.Open(source.RepoOptions{Name: h.repo, URL: srv.URL + "/models.git", Branch: "main", AllowLocal: true})
		require.NoError(t, err)
		o.Repositories[0].Source = repo
	})
	s := h.eventually("dev", func(s Status) bool { return strings.Contains(s.LastError, "deadline exceeded") }, "the fetch gave up")
	assert.Contains(t, s.LastError, "fetch "+h.repo)
	assert.True(t, h.eng.Ready(), "one unreachable Git server does not take ferry out of its Service")
	assert.Positive(t, h.counter("ferry_git_fetch_failures_total", "repository", h.repo), "the trouble shows in the metrics")
}
