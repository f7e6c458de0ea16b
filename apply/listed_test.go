package apply

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestAnApplyThatChangesNothingKnowsTheHealthFromItsListAndListsInTheObjectsNamespace(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	req := Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objects(t, ns, model)}
	cs, err := a.Apply(t.Context(), req)
	require.NoError(t, err)
	assert.Nil(t, cs.Health, "an apply that created objects does not know their health")
	_, err = a.Wait(t.Context(), req.Inventory, req.Objects, WaitOptions{Timeout: time.Minute})
	require.NoError(t, err, "kwok makes the Deployment Available")

	reqs.reset()
	cs, err = a.Apply(t.Context(), req)
	require.NoError(t, err)
	require.NotNil(t, cs.Health, "nothing changed: the LIST told each object's health")
	assert.True(t, cs.Health.Healthy(), "%v", cs.Health.Objects)
	assert.Len(t, cs.Health.Objects, 3)
	assert.Equal(t, 3, reqs.total(), "one LIST per kind, nothing else: %v", reqs.paths)
	for _, p := range reqs.paths {
		assert.Contains(t, p, "/namespaces/"+ns+"/", "the objects share a namespace: it is listed alone, not every namespace")
	}
}

func TestAnApplyThatChangesNothingReportsAnObjectThatIsNotReadyAsItIs(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	// No node matches: its pod stays Pending and the Deployment never
	// becomes Available.
	stuck := strings.Replace(model, "    spec:\n      containers:", "    spec:\n      nodeSelector: {ferry.dev/test: nowhere}\n      containers:", 1)
	require.NotEqual(t, model, stuck)
	req := Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objects(t, ns, stuck)}
	_, err := a.Apply(t.Context(), req)
	require.NoError(t, err)

	cs, err := a.Apply(t.Context(), req)
	require.NoError(t, err)
	require.NotNil(t, cs.Health)
	assert.False(t, cs.Health.Healthy(), "the caller must Wait: %v", cs.Health.Objects)
	for _, h := range cs.Health.Objects {
		if h.Ref.Kind == "Deployment" {
			assert.Equal(t, InProgress, h.Status, h.Message)
		} else {
			assert.Equal(t, Current, h.Status, "%s", h.Ref)
		}
	}
}

func TestAVerificationSavedKeepsTheInventoryCachedSoTheNextApplyReadsNothingMore(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	req := Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objects(t, ns, model)}
	_, err := a.Apply(t.Context(), req)
	require.NoError(t, err)
	require.NoError(t, a.SaveVerification(t.Context(), req.Inventory, Verification{Revision: "r1", Passed: true}))

	reqs.reset()
	_, err = a.Apply(t.Context(), req)
	require.NoError(t, err)
	for _, p := range reqs.paths {
		assert.False(t, strings.Contains(p, "/configmaps/"+req.Inventory.configMapName()), "the inventory is not read again: %v", reqs.paths)
	}

	// Someone else writes the inventory after ferry read it: the verification
	// save cannot vouch for the cache, and the next apply reads it again.
	_, err = cluster.Client.CoreV1().ConfigMaps(inventoryNS).Patch(t.Context(), req.Inventory.configMapName(), "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"someone":"else"}},"data":{"objects":"[]"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.NoError(t, a.SaveVerification(t.Context(), req.Inventory, Verification{Revision: "r1", Passed: true}))
	reqs.reset()
	_, err = a.Apply(t.Context(), req)
	require.NoError(t, err)
	read := false
	for _, p := range reqs.paths {
		read = read || strings.HasPrefix(p, "GET ") && strings.Contains(p, "/configmaps/"+req.Inventory.configMapName())
	}
	assert.True(t, read, "the inventory changed under the cache: read again: %v", reqs.paths)
}

func TestARestartedApplierReadsAnInventoryOnceNotOnEveryResync(t *testing.T) {
	ns := cluster.Namespace(t)
	first, _ := newApplier(t, cluster)
	req := Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objects(t, ns, model)}
	_, err := first.Apply(t.Context(), req)
	require.NoError(t, err)

	// A new process: nothing cached. Its first apply reads the inventory;
	// the idle resyncs after it do not.
	a, reqs := newApplier(t, cluster)
	reads := func() (n int) {
		for _, p := range reqs.paths {
			if strings.HasPrefix(p, "GET ") && strings.Contains(p, "/configmaps/"+req.Inventory.configMapName()) {
				n++
			}
		}
		return n
	}
	for range 3 {
		cs, err := a.Apply(t.Context(), req)
		require.NoError(t, err)
		assert.Equal(t, 0, cs.Count(Configured)+cs.Count(Created), "nothing changed: %v", cs.Changes)
	}
	assert.Equal(t, 1, reads(), "one read of the inventory, then the copy read: %v", reqs.paths)

	// Someone else writes it meanwhile: the watch drops the copy when it
	// sees that write, or, if the apply comes first, its conditional write
	// is refused and the retry reads it. Either way it is read once more.
	_, err = cluster.Client.CoreV1().ConfigMaps(inventoryNS).Patch(t.Context(), req.Inventory.configMapName(), "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"someone":"else"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	changed := Request{Inventory: req.Inventory, Revision: "r2", Objects: objects(t, ns, model)}
	changed.Objects[0].SetLabels(map[string]string{"changed": "yes"})
	if _, err = a.Apply(t.Context(), changed); err != nil {
		assert.True(t, IsTransient(err), "a conflict on the inventory is transient: %v", err)
		_, err = a.Apply(t.Context(), changed)
	}
	require.NoError(t, err)
	assert.Equal(t, 2, reads(), "read again: %v", reqs.paths)
}

func TestAnIdleApplyPrunesWhatAnotherReplicaAddedMeanwhile(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	a, b := replica(t, "a", nil, nil), replica(t, "b", nil, nil)
	r1 := Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)}
	_, err := b.Apply(t.Context(), r1)
	require.NoError(t, err)

	// a, overlapping b for a moment, applies r2 with one more object; then
	// the branch goes back to r1. b's next apply changes nothing of its
	// own and writes nothing, so only the watch can tell it that its copy
	// of the inventory is old.
	extra := objects(t, ns, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n")
	_, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: append(objects(t, ns, model), extra...)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.Apply(t.Context(), r1)
		require.NoError(t, err)
		_, err = cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "extra", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 10*time.Second, 100*time.Millisecond, "b prunes what a added once its watch sees a's write")
}

func TestADiffBesideAnApplyOfTheSameInventoryReadsItsOwnCopy(t *testing.T) {
	// Run with -race (make test does): a preview's Diff and the engine's Apply
	// share one Applier and its cached inventory.
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	version := func(i int) []*unstructured.Unstructured {
		return objects(t, ns, strings.Replace(model, `threshold: "0.7"`, fmt.Sprintf(`threshold: "0.%d"`, i), 1))
	}
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r0", Objects: version(0)})
	require.NoError(t, err)

	done := make(chan struct{})
	diffs := make(chan error, 1)
	go func() {
		defer close(diffs)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := a.Diff(t.Context(), Request{Inventory: inv, Revision: "next", Objects: version(9)}); err != nil {
				diffs <- err
				return
			}
		}
	}()
	for i := 1; i <= 5; i++ {
		_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: fmt.Sprintf("r%d", i), Objects: version(i)})
		require.NoError(t, err)
	}
	close(done)
	require.NoError(t, <-diffs)
}
