package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
)

// withPolicy gives the dev environment of valid the policy written in flow style.
func withPolicy(policy string) string {
	return strings.Replace(valid, "promoteTo: staging}", "promoteTo: staging, policy: "+policy+"}", 1)
}

func TestAPolicyLoadsAsWritten(t *testing.T) {
	c, err := Parse([]byte(withPolicy(`{namespaces: [ml-dev], clusterKinds: [Namespace, ClusterRole.rbac.authorization.k8s.io, CustomResourceDefinition.apiextensions.k8s.io], serviceAccount: ml-dev/ferry-applier}`)), fullEnv)
	require.NoError(t, err)
	assert.Equal(t, DefaultNamespace, c.Namespace)
	p := c.Repositories[0].Environments[0].Policy
	assert.Equal(t, []string{"ml-dev"}, p.Namespaces)
	assert.Equal(t, []string{"Namespace", "ClusterRole.rbac.authorization.k8s.io", "CustomResourceDefinition.apiextensions.k8s.io"}, p.ClusterKinds)
	assert.Equal(t, types.NamespacedName{Namespace: "ml-dev", Name: "ferry-applier"}, p.ServiceAccountName())

	staging := c.Repositories[0].Environments[1].Policy
	assert.Nil(t, staging.Namespaces, "unset: the default")
	assert.Equal(t, types.NamespacedName{}, staging.ServiceAccountName(), "unset: ferry's own identity")

	c, err = Parse([]byte(withPolicy(`{namespaces: []}`)), fullEnv)
	require.NoError(t, err)
	assert.NotNil(t, c.Repositories[0].Environments[0].Policy.Namespaces, "an empty list is kept apart from an unset one: it grants none")
}

func TestEachPolicyCheckNamesTheKeyAndWhatIsExpected(t *testing.T) {
	const env = "repositories[0].environments[0].policy"
	cases := []struct {
		name    string
		config  string
		key     string
		message string
	}{
		{"a namespace that is not a namespace name", withPolicy(`{namespaces: [ml-dev, ML_Prod]}`), env + ".namespaces[1]", `"ML_Prod" is not a namespace name`},
		{"ferry's default namespace", withPolicy(`{namespaces: [ferry-system]}`), env + ".namespaces[0]", `"ferry-system" is ferry's own namespace, which no environment may write; remove it`},
		{"the namespace ferry is configured to run in", "namespace: ferry\n" + withPolicy(`{namespaces: [ml-dev, ferry]}`), env + ".namespaces[1]", `"ferry" is ferry's own namespace`},
		{"a namespace listed twice", withPolicy(`{namespaces: [ml-dev, ml-dev]}`), env + ".namespaces[1]", "listed twice"},
		{"a resource name instead of a kind", withPolicy(`{clusterKinds: [clusterroles.rbac.authorization.k8s.io]}`), env + ".clusterKinds[0]", "is not a kind; expected Kind for the core group or Kind.group"},
		{"a kind with a version", withPolicy(`{clusterKinds: [ClusterRole.rbac.authorization.k8s.io/v1]}`), env + ".clusterKinds[0]", "is not an API group; expected Kind.group"},
		{"a kind of another group written as core", withPolicy(`{clusterKinds: [Namespace, CustomResourceDefinition]}`), env + ".clusterKinds[1]", `"CustomResourceDefinition" is not in the core group; write CustomResourceDefinition.apiextensions.k8s.io`},
		{"a wildcard kind", withPolicy(`{clusterKinds: ["*"]}`), env + ".clusterKinds[0]", "is not a kind"},
		{"a service account without its namespace", withPolicy(`{serviceAccount: ferry-applier}`), env + ".serviceAccount", `"ferry-applier" is not namespace/name`},
		{"an unknown policy key", withPolicy(`{namespace: [ml-dev]}`), env + ".namespace", "unknown field"},
		{"a namespace for ferry that is not a namespace name", "namespace: Ferry\n" + valid, "namespace", `"Ferry" is not a namespace name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config), fullEnv)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key+": ")
			assert.Contains(t, err.Error(), tc.message)
		})
	}
}
