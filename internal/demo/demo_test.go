package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/testenv"
)

// TestTheDemoCarriesAModelFromDevToProd runs `make demo`'s story end to end
// with examples/ferry.yaml as written and checks where it leaves things.
func TestTheDemoCarriesAModelFromDevToProd(t *testing.T) {
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	ferry := filepath.Join(t.TempDir(), "ferry")
	build := exec.Command("go", "build", "-o", ferry, "./cmd/ferry")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var timeline bytes.Buffer
	opts := Options{Root: root, Ferry: ferry, Out: &timeline, Timeout: 4 * time.Minute}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		assert.NoError(t, Down(ctx, opts))
	})
	res, err := Up(t.Context(), opts)
	t.Log("\n" + timeline.String())
	require.NoError(t, err)

	for _, env := range environments {
		s := res.Final[env]
		assert.Equal(t, engine.Idle, s.Phase, env)
		assert.Equal(t, engine.HealthHealthy, s.Health, env)
		assert.Contains(t, s.Models, engine.ModelVersion{Name: "fraud-detector", Version: "1.5.0"}, env)
		assert.Contains(t, s.Models, engine.ModelVersion{Name: "sentiment", Version: "2.1.0"}, env)
	}
	assert.Equal(t, []string{"ferry/promote/fraud-detector/staging", "ferry/promote/fraud-detector/prod"}, res.Branches)
	for i, to := range []string{"staging", "prod"} {
		branch := res.Branches[i]
		changed, err := testenv.Git(res.GitDir, "diff", "--name-only", branch+"^", branch)
		require.NoError(t, err)
		assert.Equal(t, "environments/"+to+"/models.yaml", changed, "a promotion changes the target's pins only")
		diff, err := testenv.Git(res.GitDir, "diff", "--unified=0", branch+"^", branch)
		require.NoError(t, err)
		assert.Contains(t, diff, `+  version: "1.5.0"`)
		assert.Equal(t, 4, strings.Count(diff, "\n-")+strings.Count(diff, "\n+")-2, "two lines out, two lines in:\n%s", diff)
	}

	// The clusters keep running, and say the same.
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: res.Kubeconfig}, &clientcmd.ConfigOverrides{CurrentContext: "prod"}).ClientConfig()
	require.NoError(t, err)
	prod, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	d, err := prod.AppsV1().Deployments("ml-prod").Get(t.Context(), "fraud-detector", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "1.5.0", d.Annotations["ferry.dev/model-version"])
	_, err = prod.AutoscalingV2().HorizontalPodAutoscalers("ml-prod").Get(t.Context(), "fraud-detector", metav1.GetOptions{})
	assert.NoError(t, err, "prod autoscales fraud-detector")

	for _, want := range []string{"webhook to ferry: 202 Accepted", "a reviewer merges ferry/promote/fraud-detector/prod", "ferry status"} {
		assert.Contains(t, timeline.String(), want)
	}
	_, err = os.Stat(filepath.Join(opts.state(), "ferry.log"))
	assert.NoError(t, err)
}
