package apply

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestPruneNeverFollowsAFailedApply(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	v1 := "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: features-v1}\ndata: {threshold: \"0.7\"}\n"
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model+v1)})
	require.NoError(t, err)

	// The rename to v2 is refused (a data key the API server rejects): v1
	// must stay, in the cluster and in the inventory.
	badV2 := "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: features-v2}\ndata: {\"bad key!\": \"0.7\"}\n"
	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model+badV2)})
	require.Error(t, err)
	assert.False(t, IsTransient(err), "an invalid object is bad input: %v", err)
	got := actions(cs)
	assert.Contains(t, got["ConfigMap/"+ns+"/features-v2"], "failed")
	assert.Equal(t, "skipped (not pruned: 1 object of this set failed to apply)", got["ConfigMap/"+ns+"/features-v1"])
	_, err = cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "features-v1", metav1.GetOptions{})
	require.NoError(t, err, "v1 is not deleted while v2 is refused")
	assert.Contains(t, inventoryData(t, inv), `"name":"features-v1"`, "v1 stays in the inventory")

	// A restarted ferry still knows v1 is to be pruned once v2 applies.
	restarted, _ := newApplier(t, cluster)
	goodV2 := strings.Replace(badV2, "bad key!", "threshold", 1)
	cs, err = restarted.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: objects(t, ns, model+goodV2)})
	require.NoError(t, err)
	assert.Equal(t, "deleted", actions(cs)["ConfigMap/"+ns+"/features-v1"])
	assert.NotContains(t, inventoryData(t, inv), `"name":"features-v1"`)
}

// featureStores returns a CRD of a group unique to ns (annotated to be
// pruned with ferry.dev/prune: enabled) and one custom resource of it.
func featureStores(ns string) (group, crd, cr string) {
	group = "data." + strings.ReplaceAll(ns, "-", "") + ".example.com"
	crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: featurestores.` + group + `
  annotations: {ferry.dev/prune: enabled}
spec:
  group: ` + group + `
  names: {kind: FeatureStore, plural: featurestores, singular: featurestore}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
	cr = "apiVersion: " + group + "/v1\nkind: FeatureStore\nmetadata: {name: online}\nspec: {backend: redis}\n"
	return group, crd, cr
}

func TestADiscoveryErrorNeverDropsInventoryEntries(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	group, crd, cr := featureStores(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, crd+"---\n"+cr+"---\n"+model)})
	require.NoError(t, err)
	crKey := `"kind":"FeatureStore","namespace":"` + ns + `","name":"online"`
	require.Contains(t, inventoryData(t, inv), crKey)
	withoutCR := objects(t, ns, crd+"---\n"+model)

	stillOwned := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		assert.True(t, IsTransient(err), "a discovery failure is retried: %v", err)
		assert.Contains(t, err.Error(), "inventory "+inv.String())
		assert.Contains(t, inventoryData(t, inv), crKey, "the entry stays")
		_, err = a.dynamic.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "featurestores"}).Namespace(ns).Get(t.Context(), "online", metav1.GetOptions{})
		assert.NoError(t, err, "and so does the object")
	}

	t.Run("discovery answering 503 keeps the entry of an object no longer rendered", func(t *testing.T) {
		broken := newApplierWith(t, cluster, failing(http.StatusServiceUnavailable, func(r *http.Request) bool { return r.URL.Path == "/apis" }))
		_, err := broken.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: withoutCR})
		stillOwned(t, err)
		_, err = broken.Diff(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: withoutCR})
		assert.True(t, IsTransient(err), "Diff too: %v", err)
	})
	t.Run("a kind missing from discovery while its CRD is still there keeps the entry", func(t *testing.T) {
		partial := newApplierWith(t, cluster, hidingGroup(group))
		_, err := partial.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: withoutCR})
		stillOwned(t, err)
		assert.Contains(t, err.Error(), "no CustomResourceDefinition ferry removed explains that")
	})
	t.Run("pruning the CRD and its object lets both entries go", func(t *testing.T) {
		cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: objects(t, ns, model)})
		require.NoError(t, err)
		got := actions(cs)
		assert.Equal(t, "deleted", got["FeatureStore/"+ns+"/online"])
		assert.Equal(t, "deleted", got["CustomResourceDefinition/featurestores."+group])
		assert.NotContains(t, inventoryData(t, inv), `"FeatureStore"`)
		assert.NotContains(t, inventoryData(t, inv), `"CustomResourceDefinition"`)
	})
}

func TestAKindWhoseCRDFerryPrunesLeavesTheInventoryWithIt(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	group, crd, cr := featureStores(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, crd+"---\n"+cr+"---\n"+model)})
	require.NoError(t, err)

	// Discovery no longer lists the kind (a definite NoMatch), and ferry is
	// pruning its CRD now: the object goes with the CRD.
	partial := newApplierWith(t, cluster, hidingGroup(group))
	cs, err := partial.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	got := actions(cs)
	assert.Equal(t, "deleted", got["CustomResourceDefinition/featurestores."+group])
	assert.Equal(t, "deleted (with CustomResourceDefinition/featurestores."+group+")", got["FeatureStore/"+ns+"/online"])
	assert.NotContains(t, inventoryData(t, inv), `"FeatureStore"`)
	_, err = partial.dynamic.Resource(crdResource).Get(t.Context(), "featurestores."+group, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the CRD, and its objects with it, are gone: %v", err)
}

func TestObjectsOfACRDAlreadyGoneLeaveTheInventory(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	group, crd, cr := featureStores(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, crd+"---\n"+cr+"---\n"+model)})
	require.NoError(t, err)

	// The CRD is deleted behind ferry's back; its objects go with it.
	crds := a.dynamic.Resource(crdResource)
	require.NoError(t, crds.Delete(t.Context(), "featurestores."+group, metav1.DeleteOptions{}))
	require.NoError(t, waitGone(t.Context(), func(ctx context.Context) error {
		_, err := crds.Get(ctx, "featurestores."+group, metav1.GetOptions{})
		return err
	}))

	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model)})
	require.NoError(t, err, "a kind whose CRD is gone does not block the inventory forever")
	assert.Equal(t, "skipped (already gone with CustomResourceDefinition/featurestores."+group+")", actions(cs)["FeatureStore/"+ns+"/online"])
	assert.NotContains(t, inventoryData(t, inv), `"FeatureStore"`)
}
