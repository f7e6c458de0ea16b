package faulttest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-gitops/ferry/apply"
)

// Foreign are objects beside an environment's that ferry must never delete.
type Foreign struct {
	client kubernetes.Interface
	objs   []*corev1.ConfigMap
}

// PlantForeign creates, in namespace ns (which must exist), a ConfigMap
// without ferry's labels and one labelled as another environment's of
// repo: neither is in repo/env's inventory.
func PlantForeign(t testing.TB, client kubernetes.Interface, ns, repo, env string) *Foreign {
	t.Helper()
	f := &Foreign{client: client}
	for _, cm := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "foreign-unlabelled", Namespace: ns}},
		{ObjectMeta: metav1.ObjectMeta{Name: "foreign-other-env", Namespace: ns, Labels: map[string]string{
			apply.LabelManagedBy: apply.ManagedByFerry, apply.LabelRepository: repo, apply.LabelEnvironment: env + "-elsewhere",
		}}},
	} {
		created, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
		require.NoError(t, err)
		f.objs = append(f.objs, created)
	}
	return f
}

// AssertKept checks that every foreign object is still there, the same
// object (UID) as planted.
func (f *Foreign) AssertKept(t testing.TB) {
	t.Helper()
	for _, want := range f.objs {
		got, err := f.client.CoreV1().ConfigMaps(want.Namespace).Get(t.Context(), want.Name, metav1.GetOptions{})
		if assert.NoError(t, err, "foreign ConfigMap %s/%s was deleted", want.Namespace, want.Name) {
			assert.Equal(t, want.UID, got.UID, "foreign ConfigMap %s/%s was replaced", want.Namespace, want.Name)
		}
	}
}
