package object

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind}}
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func TestStringLeadsWithKindNamespaceAndName(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    *unstructured.Unstructured
		want string
	}{
		{"a namespaced object reads Kind/namespace/name", obj("apps/v1", "Deployment", "prod", "fraud"), "Deployment/prod/fraud"},
		{"a cluster-scoped object reads Kind/name", obj("v1", "Namespace", "", "prod"), "Namespace/prod"},
		{"the group and version are not part of it", obj("serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud"), "InferenceService/ml/fraud"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, String(tc.u))
			assert.Equal(t, tc.want, Ref(tc.u.GetKind(), tc.u.GetNamespace(), tc.u.GetName()))
		})
	}
}

func TestKeyIgnoresTheVersionButNotTheGroup(t *testing.T) {
	v1 := KeyOf(obj("autoscaling/v1", "HorizontalPodAutoscaler", "ml", "fraud"))
	v2 := KeyOf(obj("autoscaling/v2", "HorizontalPodAutoscaler", "ml", "fraud"))
	assert.Equal(t, v1, v2, "one object served at two versions is one object")
	assert.Equal(t, "autoscaling/HorizontalPodAutoscaler/ml/fraud", v1.String())

	other := KeyOf(obj("example.com/v1", "HorizontalPodAutoscaler", "ml", "fraud"))
	assert.NotEqual(t, v1, other, "the same kind in another group is another object")
	assert.Equal(t, "/Namespace//prod", KeyOf(obj("v1", "Namespace", "", "prod")).String(), "empty parts keep their slashes")
}

func TestFirstDuplicateFindsTheSecondDeclaration(t *testing.T) {
	objs := []*unstructured.Unstructured{
		obj("v1", "ConfigMap", "ml", "settings"),
		obj("v1", "ConfigMap", "other", "settings"),
		obj("apps/v1", "Deployment", "ml", "settings"),
		obj("v1", "ConfigMap", "ml", "settings"),
	}
	i, dup := FirstDuplicate(objs)
	require.True(t, dup)
	assert.Equal(t, 3, i)
	_, dup = FirstDuplicate(objs[:3])
	assert.False(t, dup, "same name in another namespace or kind is not a duplicate")
}

func TestNamespacesThenCRDsGoFirst(t *testing.T) {
	for _, tc := range []struct {
		name, group, kind string
		rank              int
	}{
		{"a core Namespace is first", "", "Namespace", 0},
		{"a CRD is second", "apiextensions.k8s.io", "CustomResourceDefinition", 1},
		{"a Namespace of another group is not early", "example.com", "Namespace", 2},
		{"a CRD kind of another group is not early", "example.com", "CustomResourceDefinition", 2},
		{"a Deployment is not early", "apps", "Deployment", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.rank, Rank(tc.group, tc.kind))
			assert.Equal(t, tc.rank < 2, IsEarly(tc.group, tc.kind))
			assert.Equal(t, tc.rank == 1, IsCRD(tc.group, tc.kind))
		})
	}
}

func TestHashIsStableAndFollowsContent(t *testing.T) {
	a := obj("v1", "ConfigMap", "ml", "settings")
	a.Object["data"] = map[string]any{"b": "2", "a": "1"}
	b := obj("v1", "ConfigMap", "ml", "settings")
	b.Object["data"] = map[string]any{"a": "1", "b": "2"}
	ha, err := Hash(a)
	require.NoError(t, err)
	hb, err := Hash(b)
	require.NoError(t, err)
	assert.Equal(t, ha, hb, "map order does not matter")
	assert.Len(t, ha, 32)

	raw, _ := json.Marshal(a.Object)
	sum := sha256.Sum256(raw)
	assert.Equal(t, hex.EncodeToString(sum[:16]), ha, "the documented digest, so stored inventories stay valid")

	b.Object["data"] = map[string]any{"a": "1", "b": "3"}
	hb, err = Hash(b)
	require.NoError(t, err)
	assert.NotEqual(t, ha, hb)

	_, err = Hash(&unstructured.Unstructured{Object: map[string]any{"kind": "Bad", "x": func() {}}})
	assert.ErrorContains(t, err, "Bad/")
}

func TestKeyedHashCannotBeRecomputedWithoutTheKey(t *testing.T) {
	s := obj("v1", "Secret", "ml", "token")
	s.Object["stringData"] = map[string]any{"token": "hunter2"}
	plain, err := Hash(s)
	require.NoError(t, err)
	k1, err := KeyedHash(s, []byte("key-one-key-one-key-one-key-one!"))
	require.NoError(t, err)
	k1again, err := KeyedHash(s, []byte("key-one-key-one-key-one-key-one!"))
	require.NoError(t, err)
	k2, err := KeyedHash(s, []byte("key-two-key-two-key-two-key-two!"))
	require.NoError(t, err)
	assert.Equal(t, k1, k1again, "the same key gives the same digest")
	assert.NotEqual(t, plain, k1)
	assert.NotEqual(t, k1, k2)
	assert.Len(t, k1, len(plain))
}

func TestShortSHAIsTwelveCharacters(t *testing.T) {
	assert.Equal(t, "0123456789ab", ShortSHA("0123456789abcdef0123456789abcdef01234567"))
	assert.Equal(t, "abc", ShortSHA("abc"))
	assert.Equal(t, "", ShortSHA(""))
}
