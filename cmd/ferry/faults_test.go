package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/faulttest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/webhooks"
)

// killed is one `ferry serve` process, killed and started again, over a
// repository with one environment, dev, in the shared cluster reached
// through a proxy that can stop ferry's requests mid-apply.
type killed struct {
	t       *testing.T
	cluster *testenv.Cluster
	proxy   *faulttest.APIProxy
	wt      *testenv.WorkTree
	bin     string
	config  string
	repo    string
	ns      string
	ferry   *testenv.Ferry
	pushes  int
}

func newKilled(t *testing.T) *killed {
	t.Helper()
	c := sharedCluster(t)
	n := e2eSeq.Add(1)
	k := &killed{t: t, cluster: c, bin: testenv.BuildFerry(t), repo: fmt.Sprintf("killed-%d", n)}
	prefix := fmt.Sprintf("kill-%d-%d", os.Getpid()%100000, n)
	k.ns = prefix + "-dev"
	k.proxy = faulttest.NewAPIProxy(t, c.Config)
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "models")
	k.wt = srv.Clone(t, "models")
	files := testenv.ModelRepo(prefix, "dev")
	files["environments/dev/kustomization.yaml"] = "namespace: " + k.ns + "\nresources: [namespace.yaml, kept.yaml, batch.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n"
	files["environments/dev/kept.yaml"] = testenv.ConfigMaps("kept", 60)
	files["environments/dev/batch.yaml"] = testenv.ConfigMaps("old", 50)
	k.wt.WriteAll(t, files)
	k.wt.Commit(t, "models")
	k.wt.Push(t)
	t.Cleanup(func() {
		c.Client.CoreV1().Namespaces().Delete(context.Background(), k.ns, metav1.DeleteOptions{})
	})
	k.config = filepath.Join(t.TempDir(), "ferry.yaml")
	require.NoError(t, os.WriteFile(k.config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
adminListen: 127.0.0.1:0
resync: "@every 1h"
dataDir: %q
webhook: {secretEnv: FERRY_TEST_WEBHOOK_SECRET}
repositories:
  - name: %s
    url: %s/models.git
    allowLocal: true
    github: {owner: acme, repo: ml-models}
    environments:
      - {name: dev, path: environments/dev, cluster: {kubeconfig: %q}}
`, t.TempDir(), k.repo, srv.URL, k.proxy.Kubeconfig(t))), 0o600))
	return k
}

// start starts ferry serve (again) and waits until dev is Idle and Healthy at rev.
func (k *killed) start(rev string) {
	k.t.Helper()
	k.ferry = testenv.StartFerry(k.t, k.bin, k.config, []string{"FERRY_TEST_WEBHOOK_SECRET=" + hookSecret}, 2*time.Minute)
	k.waitDev(func(s engine.Status) bool {
		return s.Phase == engine.Idle && s.Health == engine.HealthHealthy && s.Revision == rev
	}, "dev Idle and Healthy at "+rev)
}

// waitDev waits, at most two minutes, until cond holds for dev's status.
func (k *killed) waitDev(cond func(engine.Status) bool, what string) {
	k.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(k.t.Context(), 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		body, err := k.ferry.Status(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = string(body)
		var resp statusResponse
		if err := json.Unmarshal(body, &resp); err != nil || len(resp.Environments) != 1 {
			return false, nil
		}
		return cond(resp.Environments[0].Status), nil
	})
	require.NoError(k.t, err, "waited for %s; last status: %s\n%s", what, last, k.ferry.Tail(20))
}

// push commits batch.yaml as given, pushes and, while ferry runs, tells it
// with a signed webhook; it returns the commit.
func (k *killed) push(batch, message string) string {
	k.t.Helper()
	k.wt.Write(k.t, "environments/dev/batch.yaml", batch)
	sha := k.wt.Commit(k.t, message)
	k.wt.Push(k.t)
	return sha
}

func (k *killed) notify(sha string) {
	k.t.Helper()
	k.pushes++
	body := pushPayload(sha)
	req, err := http.NewRequestWithContext(k.t.Context(), http.MethodPost, k.ferry.Public+"/webhooks/github", bytes.NewReader(body))
	require.NoError(k.t, err)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%d", k.repo, k.pushes))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", webhooks.Sign([]byte(hookSecret), body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(k.t, err)
	resp.Body.Close()
	require.Equal(k.t, http.StatusAccepted, resp.StatusCode)
}

// count returns how many ConfigMaps of dev's namespace are named prefix-….
func (k *killed) count(prefix string) int {
	k.t.Helper()
	list, err := k.cluster.Client.CoreV1().ConfigMaps(k.ns).List(k.t.Context(), metav1.ListOptions{})
	require.NoError(k.t, err)
	n := 0
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, prefix+"-") {
			n++
		}
	}
	return n
}

// killMidApply lets ferry apply 10 ConfigMaps named prefix-… and stops every
// request after them; once those 10 are in the cluster, ferry is killed with
// SIGKILL, and the requests held for it are dropped unsent.
func (k *killed) killMidApply(prefix string, sha string) {
	k.t.Helper()
	gate := faulttest.NewGate(10, faulttest.Applies("configmaps", prefix+"-"))
	k.proxy.SetGate(gate)
	k.notify(sha)
	select {
	case <-gate.Shut():
	case <-time.After(time.Minute):
		k.t.Fatalf("ferry did not apply 10 ConfigMaps %s-… within a minute\n%s", prefix, k.ferry.Tail(20))
	}
	require.True(k.t, gate.WaitHolding(k.t.Context(), 1), "the apply goes on past 10 objects")
	err := wait.PollUntilContextTimeout(k.t.Context(), 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return k.count(prefix) == 10, nil
	})
	require.NoError(k.t, err, "the 10 ConfigMaps let through are in the cluster")
	k.ferry.Kill()
	require.True(k.t, gate.WaitHolding(k.t.Context(), 0), "the held requests are dropped with their client")
	k.proxy.SetGate(nil)
	gate.Open()
}

func TestFerryKilledInTheMiddleOfAnApplyFinishesItAfterARestartAndOrphansNothing(t *testing.T) {
	faulttest.CheckLeaks(t)
	k := newKilled(t)
	first, err := testenv.Git(k.wt.Dir, "rev-parse", "HEAD")
	require.NoError(t, err)
	k.start(first)
	foreign := faulttest.PlantForeign(t, k.cluster.Client, k.ns, k.repo, "dev")

	// 50 ConfigMaps replace 50 others; ferry dies after applying 10 of them.
	renamed := k.push(testenv.ConfigMaps("new", 50), "rename the batch: old → new")
	k.killMidApply("new", renamed)
	assert.Equal(t, 50, k.count("old"), "killed before its prune: nothing deleted")

	k.start(renamed)
	assert.Equal(t, 50, k.count("new"))
	assert.Zero(t, k.count("old"), "the old batch is pruned after the restart")
	assert.Equal(t, 60, k.count("kept"))
	faulttest.AssertOwnsExactlyWhatIsThere(t, k.cluster.Client, k.cluster.Config, k.repo, "dev")
	foreign.AssertKept(t)

	// Killed again in the middle of the next rename; while ferry is down
	// the rename is reverted. The 10 objects it had applied are no longer
	// rendered and were never in an inventory that was saved after a
	// successful apply: they must still be pruned.
	next := k.push(testenv.ConfigMaps("next", 50), "rename the batch: new → next")
	k.killMidApply("next", next)
	reverted := k.push(testenv.ConfigMaps("new", 50), "revert: next → new")

	k.start(reverted)
	assert.Zero(t, k.count("next"), "nothing of the killed apply is left behind")
	assert.Equal(t, 50, k.count("new"))
	assert.Equal(t, 60, k.count("kept"))
	faulttest.AssertOwnsExactlyWhatIsThere(t, k.cluster.Client, k.cluster.Config, k.repo, "dev")
	foreign.AssertKept(t)
	require.NoError(t, k.ferry.Stop(), "ferry serve stops cleanly on SIGINT\n%s", k.ferry.Tail(20))
}
