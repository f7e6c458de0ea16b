package apply

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

func TestADeploymentBecomesCurrentThroughKwok(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	objs := objects(t, ns, model)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objs})
	require.NoError(t, err)

	report, err := a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)
	assert.True(t, report.Healthy())
	require.Len(t, report.Objects, 3)
	for _, h := range report.Objects {
		assert.Equal(t, Current, h.Status, h.String())
	}
}

func TestADeploymentThatCanNeverBeAvailableTimesOutNamingIt(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	stuck := strings.Replace(model, "      containers:", "      nodeSelector: {pool: does-not-exist}\n      containers:", 1)
	objs := objects(t, ns, stuck)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objs})
	require.NoError(t, err)

	report, err := a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: 3 * time.Second})
	require.Error(t, err)
	assert.False(t, report.Healthy())
	assert.Contains(t, err.Error(), "not Current after 3s")
	assert.Contains(t, err.Error(), "Deployment/"+ns+"/fraud: InProgress")
	assert.Contains(t, err.Error(), "Available", "the last condition is in the message")
	assert.NotContains(t, err.Error(), "ConfigMap/", "only what is not Current is named")
}

func TestAWaitSaysWhyADeploymentsPodsAreNotReady(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	gpu := strings.Replace(model, "          image: registry.example/mlserver:1.6", "          image: registry.example/mlserver:1.6\n          resources: {limits: {nvidia.com/gpu: 1}}", 1)
	objs := objects(t, ns, gpu)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objs})
	require.NoError(t, err)

	var progress []string
	var mu sync.Mutex
	_, err = a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: 3 * time.Second, ProgressEvery: 500 * time.Millisecond, Progress: func(r *HealthReport) {
		mu.Lock()
		defer mu.Unlock()
		for _, h := range r.Objects {
			if h.Status != Current {
				progress = append(progress, h.String())
			}
		}
	}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Insufficient nvidia.com/gpu", "the timeout says why")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, progress, "progress is reported while waiting")
	assert.Contains(t, progress[len(progress)-1], "Deployment/"+ns+"/fraud: InProgress")
	assert.Contains(t, progress[len(progress)-1], "pods: 1 Pending: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu")
}

var installKServe sync.Once

// kserve installs a minimal InferenceService CRD once for the package.
func kserve(t *testing.T) {
	installKServe.Do(func() {
		a, _ := newApplier(t, cluster)
		_, err := a.Apply(t.Context(), Request{Inventory: Inventory{Repository: "test-platform", Environment: "crds"}, Revision: "r1", Objects: objects(t, "", testenv.InferenceServiceCRD)})
		require.NoError(t, err)
	})
}

func TestInferenceServiceHealthFollowsReadyAndTheModelTransition(t *testing.T) {
	kserve(t)
	ns := cluster.Namespace(t)
	// watches hears of each WATCH of InferenceServices Wait sends.
	watches := make(chan struct{}, 100)
	a := newApplierWith(t, cluster, func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if req.URL.Query().Get("watch") == "true" && strings.HasSuffix(req.URL.Path, "/inferenceservices") {
				select {
				case watches <- struct{}{}:
				default:
				}
			}
			return rt.RoundTrip(req)
		})
	})
	inv := inventoryFor(ns)
	objs := objects(t, ns, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: sentiment}
spec:
  predictor:
    model:
      modelFormat: {name: huggingface}
      storageUri: hf://acme/sentiment-2.1.0
`)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objs})
	require.NoError(t, err)
	isvcs := a.dynamic.Resource(schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}).Namespace(ns)
	updateStatus := func(status map[string]any) error {
		u, err := isvcs.Get(t.Context(), "sentiment", metav1.GetOptions{})
		if err != nil {
			return err
		}
		u.Object["status"] = status
		_, err = isvcs.UpdateStatus(t.Context(), u, metav1.UpdateOptions{})
		return err
	}
	setStatus := func(status map[string]any) { require.NoError(t, updateStatus(status)) }
	conditions := func(ready string) []any {
		return []any{map[string]any{"type": "Ready", "status": ready, "message": "predictor " + ready}}
	}

	setStatus(map[string]any{"conditions": conditions("False")})
	_, err = a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "InferenceService/"+ns+"/sentiment: InProgress: Ready is not True")

	setStatus(map[string]any{"conditions": conditions("True"), "modelStatus": map[string]any{"transitionStatus": "InProgress"}})
	_, err = a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model transition InProgress")

	// The status arrives while Wait is watching: once its WATCH is sent
	// (after the LIST it resumes from), so only the watch can deliver it.
	for len(watches) > 0 {
		<-watches
	}
	updated := make(chan error, 1)
	go func() {
		<-watches
		updated <- updateStatus(map[string]any{"conditions": conditions("True"), "modelStatus": map[string]any{"transitionStatus": "UpToDate"}})
	}()
	report, err := a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: 30 * time.Second})
	require.NoError(t, <-updated)
	require.NoError(t, err)
	assert.True(t, report.Healthy())

	setStatus(map[string]any{"conditions": conditions("False"), "modelStatus": map[string]any{
		"transitionStatus": "BlockedByFailedLoad",
		"lastFailureInfo":  map[string]any{"reason": "ModelLoadFailed", "message": "weights not found at hf://acme/sentiment-2.1.0"},
	}})
	report, err = a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: 30 * time.Second})
	require.Error(t, err)
	assert.Equal(t, HealthFail, report.Objects[0].Status)
	assert.Contains(t, err.Error(), "BlockedByFailedLoad: ModelLoadFailed: weights not found")
}

func TestInferenceServiceHealthRules(t *testing.T) {
	isvc := func(status map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
			"metadata": map[string]any{"name": "m", "generation": int64(2)},
			"status":   status,
		}}
	}
	ready := []any{map[string]any{"type": "Ready", "status": "True"}}
	cases := []struct {
		name   string
		status map[string]any
		want   HealthStatus
	}{
		{"ready without a model status is current", map[string]any{"observedGeneration": int64(2), "conditions": ready}, Current},
		{"observedGeneration is KServe's copy of its Deployment's and is not compared", map[string]any{"observedGeneration": int64(1), "conditions": ready}, Current},
		{"an invalid spec has failed", map[string]any{"modelStatus": map[string]any{"transitionStatus": "InvalidSpec"}}, HealthFail},
		{"a pending transition is in progress", map[string]any{"conditions": ready, "modelStatus": map[string]any{"transitionStatus": "Pending"}}, InProgress},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := health(isvc(tc.status))
			assert.Equal(t, tc.want, got)
		})
	}
}
