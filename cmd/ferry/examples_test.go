package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

var examples = filepath.Join("..", "..", "examples")

func TestTheExampleRepositoryRendersEveryEnvironment(t *testing.T) {
	for _, env := range []string{"dev", "staging", "prod"} {
		var out, errOut bytes.Buffer
		require.NoError(t, run(t.Context(), []string{"render", "--root", filepath.Join(examples, "model-repo"), filepath.Join(examples, "model-repo", "environments", env)}, &out, &errOut), errOut.String())
		assert.Contains(t, out.String(), "kind: Deployment")
		assert.Contains(t, out.String(), "kind: InferenceService")
	}
}

// TestTheExampleConfigurationsLoadAsWritten runs both through ferry validate
// with the real loader: the environment variables they name are set, nothing
// else is stubbed. (make demo runs examples/ferry.yaml end to end.)
func TestTheExampleConfigurationsLoadAsWritten(t *testing.T) {
	t.Setenv("FERRY_DEMO_WEBHOOK_SECRET", "demo-secret")
	t.Setenv("FERRY_WEBHOOK_SECRET", "hook-secret")
	t.Setenv("GITHUB_TOKEN", "ghs_example")
	for _, file := range []string{"ferry.yaml", "ferry.github.yaml"} {
		var out, errOut bytes.Buffer
		require.NoError(t, run(t.Context(), []string{"validate", "--config-only", "--config", filepath.Join(examples, file)}, &out, &errOut), errOut.String())
		assert.Contains(t, out.String(), "1 repositories, 3 environments")
	}
	github, err := os.ReadFile(filepath.Join(examples, "ferry.github.yaml"))
	require.NoError(t, err)
	deployed, err := os.ReadFile(filepath.Join(examples, "deploy", "ferry.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(github), string(deployed), "examples/deploy/ferry.yaml is examples/ferry.github.yaml")
}

func TestTheDeployKustomizationIsAcceptedByTheAPIServer(t *testing.T) {
	c := sharedCluster(t)
	kubectl, err := testenv.Binary("kubectl")
	require.NoError(t, err)
	// A server-side dry run does not create the Namespace the rest goes in.
	_, err = c.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-system"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.Kubeconfig, "apply", "--dry-run=server", "-k", filepath.Join(examples, "deploy")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{"deployment.apps/ferry", "service/ferry", "clusterrole.rbac.authorization.k8s.io/ferry", "role.rbac.authorization.k8s.io/ferry-state", "configmap/ferry-"} {
		assert.Contains(t, string(out), want)
	}
}
