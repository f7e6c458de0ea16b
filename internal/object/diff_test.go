package object

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func parse(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(d), &u.Object))
		out = append(out, u)
	}
	return out
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: fraud, namespace: ml}
spec:
  template:
    spec:
      containers:
      - name: server
        image: mlserver:1.6
        env: [{name: MODEL_VERSION, value: "%s"}]
        envFrom: [{configMapRef: {name: %s}}]
`

func TestDiffSaysWhatIsAddedChangedAndRemoved(t *testing.T) {
	before := parse(t,
		strings.Replace(strings.Replace(deployment, "%s", "1.4.0", 1), "%s", "flags", 1),
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old, namespace: ml}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: same, namespace: ml}\nspec: {ports: [{port: 80}]}\n",
	)
	after := parse(t,
		strings.Replace(strings.Replace(deployment, "%s", "1.5.0", 1), "%s", "flags", 1),
		"apiVersion: v1\nkind: Service\nmetadata: {name: same, namespace: ml}\nspec: {ports: [{port: 80}]}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new, namespace: ml}\n",
	)
	changes := Diff(before, after)
	require.Len(t, changes, 3)
	assert.Equal(t, Change{Key: changes[0].Key, Ref: "Deployment/ml/fraud", Action: Changed, Diff: changes[0].Diff}, changes[0])
	assert.Contains(t, changes[0].Diff, "-          value: 1.4.0")
	assert.Contains(t, changes[0].Diff, "+          value: 1.5.0")
	assert.Equal(t, "ConfigMap/ml/new", changes[1].Ref)
	assert.Equal(t, Added, changes[1].Action)
	assert.Equal(t, "ConfigMap/ml/old", changes[2].Ref)
	assert.Equal(t, Removed, changes[2].Action)
}

func TestASecretsValuesNeverAppearInADiff(t *testing.T) {
	const canary = "c2VjcmV0LWNhbmFyeQ=="
	before := parse(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ml}\ndata: {token: "+canary+", same: YWJj}\n")
	after := parse(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ml}\ndata: {token: bmV3LWNhbmFyeQ==, same: YWJj}\nstringData: {plain: canary-in-clear}\n")
	changes := Diff(before, after)
	require.Len(t, changes, 1)
	d := changes[0].Diff
	for _, secret := range []string{canary, "bmV3LWNhbmFyeQ==", "YWJj", "canary-in-clear"} {
		assert.NotContains(t, d, secret)
	}
	assert.Contains(t, d, "+  token: '*** (changed)'")
	assert.Contains(t, d, "+  plain: '***'")

	removed := Diff(before, nil)
	require.Len(t, removed, 1)
	assert.NotContains(t, removed[0].Diff, canary)
}

func TestAGeneratedNamesHashSuffixDoesNotChurn(t *testing.T) {
	before := parse(t,
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags-7c9f8dk2mb, namespace: ml}\ndata: {shadow: \"true\"}\n",
		strings.Replace(strings.Replace(deployment, "%s", "1.4.0", 1), "%s", "flags-7c9f8dk2mb", 1),
	)
	after := parse(t,
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags-h5b2mk9t4g, namespace: ml}\ndata: {shadow: \"false\"}\n",
		strings.Replace(strings.Replace(deployment, "%s", "1.4.0", 1), "%s", "flags-h5b2mk9t4g", 1),
	)
	changes := Diff(before, after)
	require.Len(t, changes, 1, "the ConfigMap changed; the Deployment only follows its new name")
	assert.Equal(t, Changed, changes[0].Action)
	assert.Equal(t, "ConfigMap/ml/flags-h5b2mk9t4g", changes[0].Ref)
	assert.Contains(t, changes[0].Diff, "flags-<hash>")
	assert.Contains(t, changes[0].Diff, `+  shadow: "false"`)
}

func TestUnifiedLeavesOutWhatTheServerSetsAndTheRevision(t *testing.T) {
	live := parse(t, `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  namespace: ml
  uid: 123
  resourceVersion: "9"
  annotations: {ferry.dev/revision: abc}
  managedFields: [{manager: ferry}]
data: {a: "1"}
`)[0]
	desired := parse(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ml, annotations: {ferry.dev/revision: def}}\ndata: {a: \"1\"}\n")[0]
	assert.Empty(t, Unified("ConfigMap/ml/c", live, desired), "nothing but server fields and the revision differ")
}
