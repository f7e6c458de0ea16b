package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/webhooks"
)

const hookSecret = "webhook-CANARY-secret-42"

// e2e is a model repository on a Git server, a cluster, and a ferry.yaml for them.
type e2e struct {
	cluster *testenv.Cluster
	srv     *testenv.GitServer
	wt      *testenv.WorkTree
	prefix  string
	repo    string
	config  string
}

func newE2E(t *testing.T, envs ...string) *e2e {
	t.Helper()
	c := sharedCluster(t)
	n := e2eSeq.Add(1)
	x := &e2e{cluster: c, prefix: fmt.Sprintf("cmd-%d-%d", os.Getpid()%100000, n), repo: fmt.Sprintf("models-%d", n)}
	x.srv = testenv.NewGitServer(t, testenv.GitServerOptions{})
	x.srv.CreateRepo(t, "models")
	x.wt = x.srv.Clone(t, "models")
	x.wt.WriteAll(t, testenv.ModelRepo(x.prefix, envs...))
	x.wt.Commit(t, "models")
	x.wt.Push(t)
	t.Cleanup(func() {
		for _, env := range envs {
			c.Client.CoreV1().Namespaces().Delete(context.Background(), x.prefix+"-"+env, metav1.DeleteOptions{})
		}
	})

	var envYAML strings.Builder
	for _, env := range envs {
		fmt.Fprintf(&envYAML, "      - {name: %s, path: environments/%s, cluster: {kubeconfig: %q}}\n", env, env, c.Kubeconfig)
	}
	x.config = filepath.Join(t.TempDir(), "ferry.yaml")
	x.writeConfig(t, envYAML.String())
	t.Setenv("FERRY_TEST_WEBHOOK_SECRET", hookSecret)
	return x
}

// writeConfig writes x's ferry.yaml: its repository, on loopback listeners,
// with environments as the given YAML list items.
func (x *e2e) writeConfig(t *testing.T, environments string) {
	t.Helper()
	require.NoError(t, os.WriteFile(x.config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
adminListen: 127.0.0.1:0
resync: "@every 1h"
dataDir: %q
webhook:
  secretEnv: FERRY_TEST_WEBHOOK_SECRET
repositories:
  - name: %s
    url: %s/models.git
    allowLocal: true
    github: {owner: acme, repo: ml-models}
    environments:
%s`, t.TempDir(), x.repo, x.srv.URL, environments)), 0o600))
}

func (x *e2e) deployment(t *testing.T, env string) (*appsv1.Deployment, error) {
	return x.cluster.Client.AppsV1().Deployments(x.prefix+"-"+env).Get(t.Context(), "fraud-detector", metav1.GetOptions{})
}

var e2eSeq atomic.Int64

// syncBuffer is a log a test reads while serve writes it.
type syncBuffer struct{ testenv.LogBuffer }

// addresses waits for serve's "serving" line and returns the public and
// admin base URLs it names (both listen on port 0: no port is guessed).
func (s *syncBuffer) addresses(t *testing.T) (public, admin string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for _, line := range strings.Split(s.String(), "\n") {
			var entry struct{ Msg, Addr, Admin string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "serving" {
				public, admin = "http://"+entry.Addr, "http://"+entry.Admin
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "serve never said where it listens: %s", s.String())
	return public, admin
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func pushPayload(after string) []byte {
	return []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":%q,
"repository":{"full_name":"acme/ml-models","clone_url":"https://github.com/acme/ml-models.git"},
"head_commit":{"id":%q,"modified":["environments/dev/models.yaml"]}}`, after, after))
}

func TestServeAppliesAPushSignalledByAWebhook(t *testing.T) {
	x := newE2E(t, "dev", "staging")
	ctx, cancel := context.WithCancel(t.Context())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", x.config, "--log-format", "json"}, io.Discard, &logs)
	}()
	base, admin := logs.addresses(t)

	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		code, _ := get(t, base+"/readyz")
		return code == 200, nil
	})
	require.NoError(t, err, "ready once the engine runs")
	code, _ := get(t, base+"/healthz")
	assert.Equal(t, 200, code)
	for _, private := range []string{"/metrics", "/api/v1/status"} {
		code, _ := get(t, base+private)
		assert.Equal(t, http.StatusNotFound, code, "%s is not served on the public listener", private)
	}

	x.wt.Write(t, "environments/dev/models.yaml", testenv.ModelPin("1.1.0"))
	head := x.wt.Commit(t, "bump fraud-detector to 1.1.0 in dev")
	x.wt.Push(t)
	body := pushPayload(head)
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "e2e-1")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", webhooks.Sign([]byte(hookSecret), body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		d, err := x.deployment(t, "dev")
		if err != nil || d.Annotations["ferry.dev/model-version"] != "1.1.0" {
			return false, nil
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "the new version is applied and Available")

	// dev itself at the head and Idle (its steps after health done), not
	// merely some environment: staging moves to the head without a render
	// while dev is still checking.
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, status := get(t, admin+"/api/v1/status")
		var body struct {
			Environments []struct{ Environment, Revision, Phase string }
		}
		if json.Unmarshal([]byte(status), &body) != nil {
			return false, nil
		}
		for _, env := range body.Environments {
			if env.Environment == "dev" {
				return env.Revision == head && env.Phase == "Idle", nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "dev at %s and Idle", head)
	_, metrics := get(t, admin+"/metrics")
	assert.Contains(t, metrics, "ferry_reconcile_total")
	assert.Contains(t, metrics, `ferry_webhook_requests_total{event="push",outcome="accepted"} 1`)
	assert.Contains(t, metrics, "ferry_environment_info{environment=\"dev\"")

	var table bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"status", "--server", admin}, &table, io.Discard))
	assert.Contains(t, table.String(), "REPOSITORY")
	assert.Regexp(t, `(?m)^`+x.repo+` +dev +`+head[:12]+` +Idle +Healthy`, table.String())
	assert.Contains(t, table.String(), head[:12])

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "a signal ends serve with exit 0")
	case <-time.After(time.Minute):
		t.Fatal("serve did not stop")
	}
	assert.NotContains(t, logs.String(), hookSecret)
	assert.Contains(t, logs.String(), `"msg":"applied"`)
}

func TestSyncValidateAndDiff(t *testing.T) {
	x := newE2E(t, "dev", "prod")
	var out, errOut bytes.Buffer

	err := run(t.Context(), []string{"diff", "--config", x.config}, &out, &errOut)
	require.ErrorIs(t, err, errDiffers, "nothing applied yet: everything would be created")
	assert.Contains(t, out.String(), "Deployment/"+x.prefix+"-dev/fraud-detector would be created")

	out.Reset()
	require.NoError(t, run(t.Context(), []string{"validate", "--config", x.config}, &out, &errOut))
	assert.Contains(t, out.String(), "ok  "+x.repo+"/dev")
	assert.Contains(t, out.String(), "1 models")

	out.Reset()
	require.NoError(t, run(t.Context(), []string{"sync", "--config", x.config}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "Healthy")
	d, err := x.deployment(t, "prod")
	require.NoError(t, err)
	assert.Equal(t, "1.0.0", d.Annotations["ferry.dev/model-version"])

	out.Reset()
	require.NoError(t, run(t.Context(), []string{"diff", "--config", x.config}, &out, &errOut))
	assert.Contains(t, out.String(), "no differences")

	// A broken environment: validate names the file, sync fails, the other is reported ok.
	x.wt.Write(t, "environments/prod/kustomization.yaml", "resources: [../../models/nowhere]\n")
	x.wt.Commit(t, "break prod")
	x.wt.Push(t)
	out.Reset()
	err = run(t.Context(), []string{"validate", "--config", x.config}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), x.repo+"/prod: render environments/prod")
	assert.Contains(t, out.String(), "ok  "+x.repo+"/dev")

	out.Reset()
	err = run(t.Context(), []string{"sync", "--config", x.config, "--env", "prod"}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, out.String(), "Failed")
}

func TestSyncSaysWhatItWaitsForAndGivesUpAtItsTimeout(t *testing.T) {
	x := newE2E(t, "prod")
	// prod asks for a GPU no node of the test cluster has.
	x.wt.Write(t, "environments/prod/models.yaml", testenv.ModelPin("1.0.0")+"  resources: {gpu: 1}\n")
	x.wt.Commit(t, "prod wants a GPU")
	x.wt.Push(t)

	var out, errOut syncBuffer
	err := run(t.Context(), []string{"sync", "--config", x.config, "--timeout", "4s", "--progress-every", "500ms"}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gave up after 4s (--timeout)")
	assert.Contains(t, errOut.String(), "waiting for "+x.repo+"/prod: Waiting: Deployment/"+x.prefix+"-prod/fraud-detector: InProgress")
	assert.Contains(t, errOut.String(), "Insufficient nvidia.com/gpu", "and why: what the scheduler said")
	assert.Contains(t, out.String(), "prod", "the table says where it stood")
}
