package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-gitops/ferry/apply"
)

func TestAnEnvironmentsPolicyRefusesItsApplyAndNothingReachesTheCluster(t *testing.T) {
	h := newHarness(t)
	h.start(func(o *Options) {
		o.Repositories[0].Environments[0].Policy = &apply.Policy{Namespaces: []string{"elsewhere"}} // dev
	})
	failed := h.eventually("dev", func(s Status) bool { return s.Phase == Failed }, "dev refused")
	assert.Equal(t, StepApply, failed.FailedStep)
	assert.Contains(t, failed.LastError, "Namespace/"+h.prefix+"-dev: policy: namespace "+h.prefix+"-dev is not one "+h.repo+"/dev may declare (policy.namespaces: elsewhere)")
	_, err := cluster.Client.CoreV1().Namespaces().Get(t.Context(), h.prefix+"-dev", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "nothing of dev was applied")

	head, _ := h.eng.opts.Repositories[0].Source.Head(t.Context())
	h.eventually("staging", idleAt(head), "staging, without a policy, is not held up")
}
