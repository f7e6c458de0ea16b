package apply

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/ferry-gitops/ferry/internal/object"
)

// The key that makes the inventory's hashes of Secrets unguessable. A
// ConfigMap is readable far more widely than a Secret, and a plain digest of
// a low-entropy value can be tested offline against guesses; a digest keyed
// with a secret only readers of this Secret hold cannot.
const (
	hashKeySecret = "ferry-inventory-key"
	hashKeyField  = "key"
	hashKeySize   = 32
)

// hash returns the hash an inventory entry keeps for u: object.KeyedHash
// with the cluster's inventory key for a Secret (any group), the plain
// object.Hash for anything else.
func (a *Applier) hash(ctx context.Context, u *unstructured.Unstructured) (string, error) {
	if u.GetKind() != "Secret" {
		return object.Hash(u)
	}
	key, err := a.hashKey(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", object.String(u), err)
	}
	return object.KeyedHash(u, key)
}

// hashKey returns the cluster's inventory key, loading it once per Applier on
// first need: from the Secret ferry-system/ferry-inventory-key, which it
// creates with a random key when missing. Two replicas creating it at once
// both end up with the one that was stored first (create; on AlreadyExists,
// read). A failure is not cached: the next call tries again.
func (a *Applier) hashKey(ctx context.Context) ([]byte, error) {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.key != nil {
		return a.key, nil
	}
	key, err := a.loadHashKey(ctx)
	if err != nil {
		return nil, err
	}
	a.key = key
	return key, nil
}

func (a *Applier) loadHashKey(ctx context.Context) ([]byte, error) {
	ns, name := a.keyRef.Namespace, a.keyRef.Name
	where := fmt.Sprintf("inventory key Secret %s/%s", ns, name)
	secrets := a.core.CoreV1().Secrets(ns)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if s, err = a.createHashKey(ctx); err != nil {
			return nil, fmt.Errorf("%s: create: %w", where, mark(err))
		}
	case err != nil:
		return nil, fmt.Errorf("%s: read: %w", where, mark(err))
	}
	key := s.Data[hashKeyField]
	if len(key) != hashKeySize {
		return nil, fmt.Errorf("%s: data.%s holds %d bytes, want %d; delete the Secret to have ferry create a new key (every Secret is then applied once more)",
			where, hashKeyField, len(key), hashKeySize)
	}
	return key, nil
}

// createHashKey stores a new random key, creating the namespace when needed,
// and returns the stored Secret: its own, or the one another replica stored
// first.
func (a *Applier) createHashKey(ctx context.Context) (*corev1.Secret, error) {
	ns, name := a.keyRef.Namespace, a.keyRef.Name
	key := make([]byte, hashKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedByFerry}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{hashKeyField: key},
	}
	secrets := a.core.CoreV1().Secrets(ns)
	created, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) { // the namespace is missing
		nsac := corev1ac.Namespace(ns).WithLabels(map[string]string{LabelManagedBy: ManagedByFerry})
		if _, err := a.core.CoreV1().Namespaces().Apply(ctx, nsac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return nil, fmt.Errorf("create namespace %s: %w", ns, err)
		}
		created, err = secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager})
	}
	if apierrors.IsAlreadyExists(err) { // another replica won the race: use its key
		return secrets.Get(ctx, name, metav1.GetOptions{})
	}
	return created, err
}
