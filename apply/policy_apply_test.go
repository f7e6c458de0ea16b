package apply

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func cm(ns, name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: %s}\ndata: {k: v}\n", name, ns)
}

func TestARefusedSetSendsNoWriteAndPrunesNothing(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	inv := inventoryFor(ns)
	policy := &Policy{Namespaces: []string{ns}}
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: rendered(t, cm(ns, "old")), Policy: policy})
	require.NoError(t, err)
	stored := inventoryData(t, inv)

	reqs.reset()
	role := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: " + ns + "-reader}\n"
	set := rendered(t, docs(cm(ns, "new"), role))
	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: set, Policy: policy})
	require.Error(t, err)
	assert.False(t, IsTransient(err), "a refusal is bad input")
	assert.Contains(t, refusals(t, err)["ClusterRole/"+ns+"-reader"], "the cluster-scoped kind ClusterRole.rbac.authorization.k8s.io is not one")
	assert.Zero(t, reqs.writes(), "not one write: %v", reqs.paths)
	got := actions(cs)
	assert.Equal(t, "skipped (not applied: the policy refused 1 object of this set)", got["ConfigMap/"+ns+"/new"])
	assert.Equal(t, "skipped (not pruned: the policy refused 1 object of this set)", got["ConfigMap/"+ns+"/old"])
	assert.True(t, strings.HasPrefix(got["ClusterRole/"+ns+"-reader"], "failed (the cluster-scoped kind"), got["ClusterRole/"+ns+"-reader"])

	_, err = cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "new", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the allowed object of a refused set is not applied either")
	_, err = cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "old", metav1.GetOptions{})
	assert.NoError(t, err, "nothing is pruned")
	assert.Equal(t, stored, inventoryData(t, inv), "the inventory is unchanged")

	reqs.reset()
	diffs, err := a.Diff(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: set, Policy: policy})
	assert.Empty(t, diffs)
	assert.Contains(t, refusals(t, err), "ClusterRole/"+ns+"-reader", "Diff refuses the same set")
	assert.Zero(t, reqs.writes(), "not even a dry run: %v", reqs.paths)
}

func TestAnObjectOfAnotherEnvironmentIsRefusedAndKeepsItsLabels(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	staging := inventoryFor(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: staging, Revision: "r1", Objects: rendered(t, cm(ns, "shared"))})
	require.NoError(t, err)

	dev := Inventory{Repository: "ml-models", Environment: "dev"}
	for _, policy := range []*Policy{{Namespaces: []string{ns}}, nil} {
		reqs.reset()
		_, err = a.Apply(t.Context(), Request{Inventory: dev, Revision: "r1", Objects: rendered(t, docs(cm(ns, "shared"), cm(ns, "own"))), Policy: policy})
		require.Error(t, err)
		assert.Equal(t, map[string]string{"ConfigMap/" + ns + "/shared": "ConfigMap/" + ns + "/shared: policy: it belongs to ml-models/" + ns +
			" (labels ferry.dev/repository=ml-models, ferry.dev/environment=" + ns + "), and ferry never takes over another environment's object: rename it here, or remove it from ml-models/" + ns + " first"},
			refusals(t, err), "refused with or without a policy")
		assert.False(t, IsTransient(err))
		assert.Zero(t, reqs.writes(), "%v", reqs.paths)
	}

	live, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "shared", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, ns, live.Labels[LabelEnvironment], "still the other environment's")
	_, err = cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "own", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
}

func TestADeclaredNamespaceThatExistsIsNotTakenOverByDefault(t *testing.T) {
	taken := cluster.Namespace(t) // exists, created by someone else
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(taken)
	ns := func(name string) string { return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n" }

	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: rendered(t, docs(ns(taken), cm(taken, "x"))), Policy: &Policy{}})
	assert.Equal(t, []string{"Namespace/" + taken}, keys(refusals(t, err)))
	assert.Contains(t, err.Error(), "namespace "+taken+" exists and is not ml-models/"+taken+"'s: a render may create a namespace, not take one over; to write there, list "+taken+" in policy.namespaces")

	_, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: rendered(t, docs(ns(taken), cm(taken, "x"))), Policy: &Policy{Namespaces: []string{taken}}})
	assert.NoError(t, err, "a listed namespace may be adopted")

	// A namespace the render creates stays its own on the next apply.
	fresh := taken + "-own"
	t.Cleanup(func() { _ = cluster.Client.CoreV1().Namespaces().Delete(t.Context(), fresh, metav1.DeleteOptions{}) })
	own := Inventory{Repository: "ml-models", Environment: fresh}
	for range 2 {
		_, err = a.Apply(t.Context(), Request{Inventory: own, Revision: "r1", Objects: rendered(t, docs(ns(fresh), cm(fresh, "x"))), Policy: &Policy{}})
		require.NoError(t, err)
	}
}

func TestApplyChecksThePolicyWithTheClustersScopes(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	inv := inventoryFor(ns)
	policy := Policy{Namespaces: []string{ns}}
	set := rendered(t, docs(
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",                                         // namespaced: goes to default
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r, namespace: "+ns+"}\n", // cluster-scoped, whatever it says
	))
	require.NoError(t, policy.Check(inv, rendered(t, docs("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r, namespace: "+ns+"}\n"))),
		"without a cluster, a namespace makes an object look namespaced")

	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: set, Policy: &policy})
	got := refusals(t, err)
	assert.Equal(t, []string{"ClusterRole/r", "ConfigMap/default/settings"}, keys(got))
	assert.Contains(t, got["ConfigMap/default/settings"], "namespace default is not one ml-models/"+ns+" may write")
	assert.Contains(t, got["ClusterRole/r"], "the cluster-scoped kind ClusterRole.rbac.authorization.k8s.io")
	assert.Zero(t, reqs.writes())
}

func TestAnIdleResyncUnderAPolicyCostsOneListPerKind(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	inv := inventoryFor(ns)
	req := Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model), Policy: &Policy{Namespaces: []string{ns}}}
	_, err := a.Apply(t.Context(), req)
	require.NoError(t, err)

	reqs.reset()
	cs, err := a.Apply(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, 3, cs.Count(Unchanged))
	assert.Zero(t, reqs.writes(), "%v", reqs.paths)
	assert.Equal(t, 3, reqs.total(), "one LIST for each of 3 kinds: %v", reqs.paths)
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
