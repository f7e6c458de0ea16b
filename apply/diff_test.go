package apply

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

const secretCanary = "s3cr3t-CANARY-value-7d1"

func byRef(diffs []ObjectDiff) map[string]ObjectDiff {
	out := map[string]ObjectDiff{}
	for _, d := range diffs {
		out[d.Ref.String()] = d
	}
	return out
}

func TestDiffShowsWhatApplyWouldDoWithoutChangingAnything(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	inv := inventoryFor(ns)
	withExtra := model + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\n"
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, withExtra)})
	require.NoError(t, err)

	next := strings.Replace(model, "mlserver:1.6", "mlserver:1.7", 1) + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\ndata: {a: b}\n"
	reqs.reset()
	diffs, err := a.Diff(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, next)})
	require.NoError(t, err)
	assert.Zero(t, reqs.count["DELETE"]+reqs.count["POST"]+reqs.count["PUT"])
	for _, p := range reqs.paths {
		if strings.HasPrefix(p, "PATCH") {
			assert.Contains(t, p, "dryRun=All", "only dry-run patches")
		}
	}

	got := byRef(diffs)
	assert.Equal(t, Unchanged, got["ConfigMap/"+ns+"/settings"].Action)
	assert.Equal(t, Configured, got["Deployment/"+ns+"/fraud"].Action)
	assert.Contains(t, got["Deployment/"+ns+"/fraud"].Diff, "-      - image: registry.example/mlserver:1.6")
	assert.Contains(t, got["Deployment/"+ns+"/fraud"].Diff, "+      - image: registry.example/mlserver:1.7")
	assert.Equal(t, Created, got["ConfigMap/"+ns+"/new"].Action)
	assert.Equal(t, Deleted, got["ConfigMap/"+ns+"/old"].Action)

	dep, err := cluster.Client.AppsV1().Deployments(ns).Get(t.Context(), "fraud", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "registry.example/mlserver:1.6", dep.Spec.Template.Spec.Containers[0].Image, "a diff changes nothing")
}

func TestSecretValuesNeverAppearInDiffsOrErrors(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	secret := func(value string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: registry}\nstringData: {token: " + value + ", same: unchanged-value}\n"
	}
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, secret("old-"+secretCanary))})
	require.NoError(t, err)

	diffs, err := a.Diff(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, secret("new-"+secretCanary))})
	require.NoError(t, err)
	d := byRef(diffs)["Secret/"+ns+"/registry"]
	assert.Equal(t, Configured, d.Action)
	assert.Contains(t, d.Diff, "*** (changed)")
	assert.NotContains(t, d.Diff, secretCanary)
	assert.NotContains(t, d.Diff, "unchanged-value")
	assert.NotContains(t, d.Diff, "dW5jaGFuZ2VkLXZhbHVl", "nor base64 of a value")
	assert.NotContains(t, d.Diff, "ferry.dev/revision", "the revision changes with every commit: not worth a line")

	// An apply the server rejects: the error must not echo the value.
	bad := "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\nstringData: {tls.crt: " + secretCanary + "}\n"
	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: objects(t, ns, secret("old-"+secretCanary)+"---\n"+bad)})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secretCanary)
	for _, c := range cs.Changes {
		assert.NotContains(t, c.Reason, secretCanary)
	}
}

func TestScrubRemovesSecretValuesFromMessages(t *testing.T) {
	obj := objects(t, "ns", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: aHVudGVyMg==}\nstringData: {p: swordfish}\n")[0]
	msg := scrub(`invalid value "aHVudGVyMg==" ("hunter2") and "swordfish"`, obj)
	assert.NotContains(t, msg, "aHVudGVyMg==")
	assert.NotContains(t, msg, "hunter2")
	assert.NotContains(t, msg, "swordfish")
}

func TestTwoClustersEachKeepTheirOwnInventory(t *testing.T) {
	other := testenv.NewCluster(t)
	ns := cluster.Namespace(t)
	otherNS := other.Namespace(t)
	a, _ := newApplier(t, cluster)
	b, _ := newApplier(t, other)
	inv := Inventory{Repository: "ml-models", Environment: "prod"}

	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	_, err = b.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, otherNS, model)[:1]})
	require.NoError(t, err)

	cmA, err := cluster.Client.CoreV1().ConfigMaps("ferry-system").Get(t.Context(), inv.configMapName(), metav1.GetOptions{})
	require.NoError(t, err)
	cmB, err := other.Client.CoreV1().ConfigMaps("ferry-system").Get(t.Context(), inv.configMapName(), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cmA.Data["objects"], `"Deployment"`)
	assert.NotContains(t, cmB.Data["objects"], `"Deployment"`)

	// Emptying one cluster's environment never touches the other's.
	_, err = b.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: nil, AllowMassDelete: true})
	require.NoError(t, err)
	_, err = cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "settings", metav1.GetOptions{})
	assert.NoError(t, err)
	t.Cleanup(func() {
		a.Apply(t.Context(), Request{Inventory: inv, Revision: "cleanup", AllowMassDelete: true})
	})
}

func TestDiffOfObjectsInANamespaceTheSetCreatesSaysCreated(t *testing.T) {
	ns := cluster.Namespace(t) + "-new"
	a, _ := newApplier(t, cluster)
	set := "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n---\n" + model
	diffs, err := a.Diff(t.Context(), Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objects(t, ns, set)})
	require.NoError(t, err)
	for _, d := range diffs {
		assert.Equal(t, Created, d.Action, d.Ref.String())
		assert.Contains(t, d.Diff, "+kind: "+d.Ref.Kind)
	}
}
