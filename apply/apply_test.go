package apply

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

const model = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  threshold: "0.7"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fraud
spec:
  selector:
    matchLabels: {app: fraud}
  template:
    metadata:
      labels: {app: fraud}
    spec:
      containers:
        - name: server
          image: registry.example/mlserver:1.6
---
apiVersion: v1
kind: Service
metadata:
  name: fraud
spec:
  selector: {app: fraud}
  ports: [{port: 80, targetPort: 8080}]
`

func actions(cs *ChangeSet) map[string]string {
	out := map[string]string{}
	for _, c := range cs.Changes {
		s := string(c.Action)
		if c.Reason != "" {
			s += " (" + c.Reason + ")"
		}
		out[c.Ref.String()] = s
	}
	return out
}

func TestApplyCreatesThenAnUnchangedResyncSendsNoWrite(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	inv := inventoryFor(ns)

	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "aaa111", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"ConfigMap/" + ns + "/settings": "created",
		"Deployment/" + ns + "/fraud":   "created",
		"Service/" + ns + "/fraud":      "created",
	}, actions(cs))

	dep, err := cluster.Client.AppsV1().Deployments(ns).Get(t.Context(), "fraud", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "ferry", dep.Labels[LabelManagedBy])
	assert.Equal(t, "ml-models", dep.Labels[LabelRepository])
	assert.Equal(t, ns, dep.Labels[LabelEnvironment])
	assert.Equal(t, "aaa111", dep.Annotations[AnnotationRev])
	rv := dep.ResourceVersion

	reqs.reset()
	cs, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "aaa111", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	assert.Equal(t, 3, cs.Count(Unchanged))
	assert.Zero(t, reqs.writes(), "a resync of an unchanged environment costs no write: %v", reqs.paths)
	assert.LessOrEqual(t, reqs.total(), 3, "at most one request per kind: %v", reqs.paths)

	// A new commit that changes none of the objects writes only the
	// inventory's revision.
	reqs.reset()
	cs, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "bbb222", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	assert.Equal(t, 3, cs.Count(Unchanged))
	assert.Equal(t, 1, reqs.writes(), "%v", reqs.paths)
	assert.Contains(t, reqs.paths[len(reqs.paths)-1], "ferry-system/configmaps/ferry-inventory-")

	dep, err = cluster.Client.AppsV1().Deployments(ns).Get(t.Context(), "fraud", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, rv, dep.ResourceVersion)
	assert.Equal(t, "aaa111", dep.Annotations[AnnotationRev], "the revision is the commit that last changed the object")
}

func TestChangingOneFieldConfiguresOnlyThatObject(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	inv := inventoryFor(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	reqs.reset()
	changed := strings.Replace(model, "mlserver:1.6", "mlserver:1.7", 1)
	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, changed)})
	require.NoError(t, err)
	assert.Equal(t, "configured", actions(cs)["Deployment/"+ns+"/fraud"])
	assert.Equal(t, 2, cs.Count(Unchanged))
	assert.Equal(t, 3, reqs.writes(), "one apply, and the inventory held then written: %v", reqs.paths)

	dep, err := cluster.Client.AppsV1().Deployments(ns).Get(t.Context(), "fraud", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "registry.example/mlserver:1.7", dep.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, "r2", dep.Annotations[AnnotationRev])
}

func TestDriftInAFieldFerryOwnsIsPutBackAndOtherFieldsAreLeftAlone(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	// kubectl edit: another manager changes the image (ferry's field) and
	// replicas and a label (fields ferry does not declare).
	deps := cluster.Client.AppsV1().Deployments(ns)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error { // the Deployment controller writes too
		dep, err := deps.Get(t.Context(), "fraud", metav1.GetOptions{})
		if err != nil {
			return err
		}
		dep.Spec.Template.Spec.Containers[0].Image = "registry.example/hacked:0"
		three := int32(3)
		dep.Spec.Replicas = &three
		dep.Labels["owner"] = "someone"
		_, err = deps.Update(t.Context(), dep, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
		return err
	})
	require.NoError(t, err)

	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	assert.Equal(t, "configured (drift)", actions(cs)["Deployment/"+ns+"/fraud"])
	assert.Equal(t, "unchanged", actions(cs)["ConfigMap/"+ns+"/settings"])

	dep, err := deps.Get(t.Context(), "fraud", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "registry.example/mlserver:1.6", dep.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, int32(3), *dep.Spec.Replicas, "a field ferry does not declare is left alone")
	assert.Equal(t, "someone", dep.Labels["owner"])
}

func TestPruneDeletesWhatIsNoLongerRenderedAndNothingElse(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	extra := model + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: old-a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: old-b}\n" +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep-me\n  annotations: {ferry.dev/prune: disabled}\n"
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, extra)})
	require.NoError(t, err)

	// Someone takes old-b over: it loses ferry's labels.
	cms := cluster.Client.CoreV1().ConfigMaps(ns)
	cm, err := cms.Get(t.Context(), "old-b", metav1.GetOptions{})
	require.NoError(t, err)
	delete(cm.Labels, LabelManagedBy)
	_, err = cms.Update(t.Context(), cm, metav1.UpdateOptions{})
	require.NoError(t, err)

	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	got := actions(cs)
	assert.Equal(t, "deleted", got["ConfigMap/"+ns+"/old-a"])
	assert.Contains(t, got["ConfigMap/"+ns+"/old-b"], "skipped")
	assert.Equal(t, "skipped (prune disabled by annotation)", got["ConfigMap/"+ns+"/keep-me"])

	_, err = cms.Get(t.Context(), "old-a", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "pruned and gone")
	_, err = cms.Get(t.Context(), "old-b", metav1.GetOptions{})
	assert.NoError(t, err, "an object without ferry's labels is left alone")
	_, err = cms.Get(t.Context(), "keep-me", metav1.GetOptions{})
	assert.NoError(t, err)
}

func TestNamespacesAreNeverPrunedUnlessAnnotated(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	keep, drop := ns+"-keep", ns+"-drop"
	set := "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + keep + "}\n---\n" +
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + drop + "\n  annotations: {ferry.dev/prune: enabled}\n---\n" + model
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, set)})
	require.NoError(t, err)
	t.Cleanup(func() { cluster.Client.CoreV1().Namespaces().Delete(t.Context(), keep, metav1.DeleteOptions{}) })

	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	assert.Contains(t, actions(cs)["Namespace/"+keep], "pruned only when annotated")
	assert.Equal(t, "deleted", actions(cs)["Namespace/"+drop])
	_, err = cluster.Client.CoreV1().Namespaces().Get(t.Context(), keep, metav1.GetOptions{})
	assert.NoError(t, err)
}

func TestTheMassDeleteGuardPrunesNothingUntilConfirmed(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	onlyConfig := objects(t, ns, model)[:1]
	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: onlyConfig})
	var guard *MassDeleteError
	require.True(t, errors.As(err, &guard), "%v", err)
	assert.Equal(t, 2, guard.Deleting)
	assert.Equal(t, 3, guard.Of)
	assert.Contains(t, err.Error(), "would delete 2 of the 3 objects")
	assert.Contains(t, err.Error(), "kubectl -n ferry-system annotate configmap "+inv.configMapName()+" ferry.dev/allow-mass-delete=r2")
	assert.Zero(t, cs.Count(Deleted))
	_, err = cluster.Client.AppsV1().Deployments(ns).Get(t.Context(), "fraud", metav1.GetOptions{})
	require.NoError(t, err, "nothing was pruned")

	t.Run("everything at once is refused too", func(t *testing.T) {
		_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: nil})
		require.True(t, errors.As(err, &guard))
		assert.Equal(t, 3, guard.Deleting)
	})
	t.Run("a person confirms by annotating the inventory with the revision", func(t *testing.T) {
		patch := `{"metadata":{"annotations":{"ferry.dev/allow-mass-delete":"r2"}}}`
		_, err := cluster.Client.CoreV1().ConfigMaps("ferry-system").Patch(t.Context(), inv.configMapName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		require.NoError(t, err)
		cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: onlyConfig})
		require.NoError(t, err)
		assert.Equal(t, 2, cs.Count(Deleted))
	})
	t.Run("or with the flag", func(t *testing.T) {
		_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r4", Objects: objects(t, ns, model)})
		require.NoError(t, err)
		cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r5", Objects: onlyConfig, AllowMassDelete: true})
		require.NoError(t, err)
		assert.Equal(t, 2, cs.Count(Deleted))
	})
}

func TestAnImmutableFieldIsAnErrorUnlessForced(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	newSelector := strings.NewReplacer("matchLabels: {app: fraud}", "matchLabels: {app: fraud2}", "labels: {app: fraud}", "labels: {app: fraud2}").Replace(model)
	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, newSelector)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Deployment/"+ns+"/fraud")
	assert.Contains(t, err.Error(), "spec.selector")
	assert.Contains(t, err.Error(), `ferry.dev/force: "true"`)
	assert.Equal(t, "unchanged", actions(cs)["ConfigMap/"+ns+"/settings"], "a failing object does not stop the others")

	forced := strings.Replace(newSelector, "  name: fraud\nspec:\n  selector:", "  name: fraud\n  annotations: {ferry.dev/force: \"true\"}\nspec:\n  selector:", 1)
	cs, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: objects(t, ns, forced)})
	require.NoError(t, err)
	assert.Contains(t, actions(cs)["Deployment/"+ns+"/fraud"], "recreated")
	dep, err := cluster.Client.AppsV1().Deployments(ns).Get(t.Context(), "fraud", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "fraud2", dep.Spec.Selector.MatchLabels["app"])
}

func TestOneFailingObjectDoesNotStopTheOthers(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	bad := model + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: broken}\nspec: {ports: [{port: 99999}]}\n"
	cs, err := a.Apply(t.Context(), Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objects(t, ns, bad)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ConfigMap/"+ns+"/Bad_Name: apply")
	assert.Contains(t, err.Error(), "Service/"+ns+"/broken: apply")
	assert.Equal(t, 3, cs.Count(Created))
	assert.Equal(t, 2, cs.Count(Failed))
}

func TestACRDAndItsCustomResourceApplyInOneSet(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	group := strings.ReplaceAll(ns, "-", "") + ".example.com"
	set := `apiVersion: data.` + group + `/v1
kind: FeatureStore
metadata: {name: online}
spec: {backend: redis}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: featurestores.data.` + group + `}
spec:
  group: data.` + group + `
  names: {kind: FeatureStore, plural: featurestores, singular: featurestore}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
	cs, err := a.Apply(t.Context(), Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objects(t, ns, set)})
	require.NoError(t, err)
	assert.Equal(t, 2, cs.Count(Created), cs.Summary())
}

func TestARestartedApplierKnowsWhatItOwns(t *testing.T) {
	ns := cluster.Namespace(t)
	first, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	_, err := first.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")})
	require.NoError(t, err)

	restarted, reqs := newApplier(t, cluster)
	cs, err := restarted.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")})
	require.NoError(t, err)
	assert.Equal(t, 4, cs.Count(Unchanged), "the inventory in the cluster says what was applied")
	assert.Zero(t, reqs.writes(), "%v", reqs.paths)

	cs, err = restarted.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	assert.Equal(t, 1, cs.Count(Deleted), "prune still works after a restart")
}

func TestTheInventoryRecordsTheRevisionForARestartedFerry(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	rev, err := a.Revision(t.Context(), inv)
	require.NoError(t, err)
	assert.Empty(t, rev)
	_, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "c0ffee", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	restarted, _ := newApplier(t, cluster)
	rev, err = restarted.Revision(t.Context(), inv)
	require.NoError(t, err)
	assert.Equal(t, "c0ffee", rev)
}

func TestAMassDeleteConfirmedByAnotherProcessIsNotRefusedAgain(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	// The engine's applier, its watch down: it learns of the other process's
	// prune only by reading the inventory again.
	engine := blindReplica(t, "engine")
	_, err := engine.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	onlyConfig := objects(t, ns, model)[:1]
	_, err = engine.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: onlyConfig})
	require.True(t, IsMassDelete(err), "%v", err)

	// A person follows the error's advice: ferry sync --allow-mass-delete.
	sync, _ := newApplier(t, cluster)
	cs, err := sync.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: onlyConfig, AllowMassDelete: true})
	require.NoError(t, err)
	require.Equal(t, 2, cs.Count(Deleted))

	// The engine's copy still lists what sync pruned: its guard finds the
	// inventory changed, and the retry plans from what the cluster holds.
	_, err = engine.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: onlyConfig})
	require.Error(t, err, "planned from the old copy")
	assert.False(t, IsMassDelete(err), "not refused on objects that are gone: %v", err)
	assert.True(t, IsTransient(err), "%v", err)
	cs, err = engine.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: onlyConfig})
	require.NoError(t, err, "the retry")
	assert.Zero(t, cs.Count(Deleted))
}
