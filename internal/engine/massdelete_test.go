package engine

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-gitops/ferry/internal/faulttest"
	"github.com/ferry-gitops/ferry/internal/testenv"
)

// confirmCommand finds the kubectl command a refused mass delete tells a
// person to run.
var confirmCommand = regexp.MustCompile("`(kubectl [^`]+)`")

func TestAMassDeleteConfirmedOnTheInventoryIsPrunedByTheNextResync(t *testing.T) {
	faulttest.CheckLeaks(t)
	kubectl, err := testenv.Binary("kubectl")
	require.NoError(t, err)
	h := newHarness(t)
	h.start(faultOptions)
	first := h.gitHead()
	h.eventually("dev", idleAt(first), "first reconcile")

	// The model leaves dev: its Deployment and Service, 2 of the 3 objects
	// dev owns, would be pruned.
	dropped := h.commit(map[string]string{
		"environments/dev/kustomization.yaml": "namespace: " + h.prefix + "-dev\nresources: [namespace.yaml]\n",
	}, "drop the model from dev")
	require.True(t, h.eng.Notify(h.repo))
	s := h.eventually("dev", func(s Status) bool { return s.Phase == Failed && s.FailedStep == StepApply }, "the prune is refused")
	assert.Contains(t, s.LastError, "would delete 2 of the 3 objects")
	assert.Contains(t, s.LastError, "nothing was pruned")
	m := confirmCommand.FindStringSubmatch(s.LastError)
	require.NotNil(t, m, "the refusal names the command that confirms it: %s", s.LastError)
	assert.Contains(t, m[1], "ferry.dev/allow-mass-delete="+dropped, "the confirmation is for this commit")
	_, err = cluster.Client.AppsV1().Deployments(h.prefix+"-dev").Get(t.Context(), "fraud-detector", metav1.GetOptions{})
	require.NoError(t, err, "nothing pruned")

	// A person runs the command as the message gives it; no new commit.
	args := append(strings.Fields(m[1])[1:], "--kubeconfig", cluster.Kubeconfig)
	out, err := exec.CommandContext(t.Context(), kubectl, args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	h.eng.Resync()

	s = h.eventually("dev", idleAt(dropped), "the confirmed prune is applied by the resync")
	assert.Contains(t, s.Summary, "2 deleted")
	assert.Equal(t, h.gitHead(), dropped, "no commit was needed")
	_, err = cluster.Client.AppsV1().Deployments(h.prefix+"-dev").Get(t.Context(), "fraud-detector", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the Deployment is pruned: %v", err)
	faulttest.AssertOwnsExactlyWhatIsThere(t, cluster.Client, cluster.Config, h.repo, "dev")
}
