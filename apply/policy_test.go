package apply

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// rendered parses a YAML stream as render returns it: namespaces as written.
func rendered(t testing.TB, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(stream, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &u.Object))
		out = append(out, u)
	}
	return out
}

// refusals returns the policy refusals in err by object, each with its message.
func refusals(t testing.TB, err error) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err == nil {
		return out
	}
	parts := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		parts = joined.Unwrap()
	}
	for _, p := range parts {
		oe, ok := errors.AsType[*ObjectError](p)
		require.True(t, ok, "not an ObjectError: %v", p)
		require.Equal(t, "policy", oe.Op, "%v", p)
		out[oe.Ref.String()] = oe.Error()
	}
	return out
}

const (
	nsDev         = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ml-dev}\n"
	cmDev         = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: ml-dev}\n"
	cmOther       = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: team-b}\n"
	clusterRole   = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n"
	crd           = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: models.ferry.dev}\n"
	webhook       = "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: inject}\n"
	nsFerry       = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ferry-system}\n"
	cmFerry       = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ferry-inventory-x, namespace: ferry-system}\n"
	nsDefault     = "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n"
	cmDefault     = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\n"
	clusterRoleRB = "ClusterRole.rbac.authorization.k8s.io"
)

func docs(d ...string) string { return strings.Join(d, "---\n") }

func TestPolicyCheckRefusesWhatTheEnvironmentMayNotWrite(t *testing.T) {
	inv := Inventory{Repository: "ml-models", Environment: "dev"}
	cases := []struct {
		name    string
		policy  Policy
		objects string
		refused map[string]string // object -> a part of its message
	}{
		{"an object in a namespace outside the policy is refused, naming the object and the allowed namespaces",
			Policy{Namespaces: []string{"ml-dev"}}, docs(cmDev, cmOther),
			map[string]string{"ConfigMap/team-b/settings": "ConfigMap/team-b/settings: policy: namespace team-b is not one ml-models/dev may write (policy.namespaces: ml-dev); to allow it, add team-b to policy.namespaces of environment dev in ferry.yaml"}},
		{"by default the namespaces the render declares may be written",
			Policy{}, docs(nsDev, cmDev), nil},
		{"by default a namespace the render does not declare is refused",
			Policy{}, docs(nsDev, cmDev, cmOther),
			map[string]string{"ConfigMap/team-b/settings": "may write only the namespaces it declares (ml-dev)"}},
		{"declaring a reserved namespace does not grant it",
			Policy{}, docs(nsDefault, cmDefault),
			map[string]string{"Namespace/default": "namespace default is reserved", "ConfigMap/default/settings": "namespace default is reserved"}},
		{"a listed reserved namespace may be written",
			Policy{Namespaces: []string{"default"}}, cmDefault, nil},
		{"a listed policy replaces the default, so a declared namespace must be listed too",
			Policy{Namespaces: []string{"team-b"}}, docs(nsDev, cmDev, cmOther),
			map[string]string{"Namespace/ml-dev": "namespace ml-dev is not one ml-models/dev may declare", "ConfigMap/ml-dev/settings": "add ml-dev to policy.namespaces"}},
		{"an empty namespaces list grants none",
			Policy{Namespaces: []string{}}, cmDev,
			map[string]string{"ConfigMap/ml-dev/settings": "(policy.namespaces: none)"}},
		{"a ClusterRole is refused when clusterKinds is unset",
			Policy{}, docs(nsDev, clusterRole),
			map[string]string{"ClusterRole/reader": `the cluster-scoped kind ClusterRole.rbac.authorization.k8s.io is not one ml-models/dev may write (allowed: Namespace); to allow it, add "ClusterRole.rbac.authorization.k8s.io" to policy.clusterKinds of environment dev in ferry.yaml`}},
		{"a ClusterRole is allowed once listed",
			Policy{ClusterKinds: []string{"Namespace", clusterRoleRB}}, docs(nsDev, clusterRole), nil},
		{"a CustomResourceDefinition is refused unless listed",
			Policy{}, crd,
			map[string]string{"CustomResourceDefinition/models.ferry.dev": "CustomResourceDefinition.apiextensions.k8s.io is not one"}},
		{"a CustomResourceDefinition is allowed once listed",
			Policy{ClusterKinds: []string{"CustomResourceDefinition.apiextensions.k8s.io"}}, crd, nil},
		{"a webhook configuration is refused unless listed",
			Policy{ClusterKinds: []string{"Namespace", clusterRoleRB}}, webhook,
			map[string]string{"MutatingWebhookConfiguration/inject": "(allowed: Namespace, ClusterRole.rbac.authorization.k8s.io)"}},
		{"listed cluster kinds replace the default, so a Namespace must be listed too",
			Policy{ClusterKinds: []string{clusterRoleRB}}, docs(nsDev, cmDev),
			map[string]string{"Namespace/ml-dev": "the cluster-scoped kind Namespace is not one"}},
		{"ferry's namespace is refused even when listed",
			Policy{Namespaces: []string{"ferry-system", "ml-dev"}}, docs(cmFerry, cmDev),
			map[string]string{"ConfigMap/ferry-system/ferry-inventory-x": "namespace ferry-system is ferry's own; no environment may write there"}},
		{"a Namespace object for ferry-system is refused, even when listed",
			Policy{Namespaces: []string{"ferry-system"}}, nsFerry,
			map[string]string{"Namespace/ferry-system": "namespace ferry-system is ferry's own; no environment may declare it"}},
		{"the namespace ferry is configured to run in is refused as well as ferry-system",
			Policy{FerryNamespace: "ferry", Namespaces: []string{"ferry", "ferry-system"}},
			docs("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: ferry}\n", cmFerry),
			map[string]string{"ConfigMap/ferry/x": "namespace ferry is ferry's own", "ConfigMap/ferry-system/ferry-inventory-x": "namespace ferry-system is ferry's own"}},
		{"every refused object is reported at once",
			Policy{}, docs(nsDev, cmOther, clusterRole, crd, webhook, nsFerry),
			map[string]string{
				"ConfigMap/team-b/settings":                 "team-b",
				"ClusterRole/reader":                        "ClusterRole.rbac.authorization.k8s.io",
				"CustomResourceDefinition/models.ferry.dev": "CustomResourceDefinition.apiextensions.k8s.io",
				"MutatingWebhookConfiguration/inject":       "MutatingWebhookConfiguration.admissionregistration.k8s.io",
				"Namespace/ferry-system":                    "ferry's own",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(inv, rendered(t, tc.objects))
			got := refusals(t, err)
			want := make([]string, 0, len(tc.refused))
			for ref, msg := range tc.refused {
				want = append(want, ref)
				assert.Contains(t, got[ref], msg)
			}
			have := make([]string, 0, len(got))
			for ref := range got {
				have = append(have, ref)
			}
			sort.Strings(want)
			sort.Strings(have)
			assert.Equal(t, want, have, "the refused objects")
			assert.False(t, IsTransient(err), "a refusal is bad input: %v", err)
		})
	}
}

func TestPolicyCheckTakesAnObjectWithoutANamespaceAsClusterScoped(t *testing.T) {
	// Without a cluster there is no discovery: Apply and Diff place such a
	// ConfigMap in "default" instead (TestApplyChecksThePolicyWithTheClustersScopes).
	err := Policy{Namespaces: []string{"ml-dev"}}.Check(Inventory{Repository: "ml-models", Environment: "dev"},
		rendered(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"))
	assert.Contains(t, refusals(t, err)["ConfigMap/settings"], "the cluster-scoped kind ConfigMap is not one ml-models/dev may write")
}
