package object

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Ref formats an object's reference as Kind/namespace/name, or Kind/name
// when namespace is empty: the form every error about an object leads with.
func Ref(kind, namespace, name string) string {
	if namespace != "" {
		return kind + "/" + namespace + "/" + name
	}
	return kind + "/" + name
}

// String is Ref of u.
func String(u *unstructured.Unstructured) string {
	return Ref(u.GetKind(), u.GetNamespace(), u.GetName())
}

// Key is an object's identity: group, kind, namespace and name. The version
// is left out, since one object served at two versions is still one object.
// Keys are comparable and serve as map keys.
type Key struct {
	Group, Kind, Namespace, Name string
}

// KeyOf returns u's identity.
func KeyOf(u *unstructured.Unstructured) Key {
	return Key{Group: u.GroupVersionKind().Group, Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// String is group/kind/namespace/name, each part present even when empty,
// so that two different keys never print alike.
func (k Key) String() string {
	return k.Group + "/" + k.Kind + "/" + k.Namespace + "/" + k.Name
}

// FirstDuplicate returns the index of the first object whose Key repeats an
// earlier one's, and false when all are distinct. Callers word the error,
// leading with String of objs[i].
func FirstDuplicate(objs []*unstructured.Unstructured) (int, bool) {
	seen := make(map[Key]bool, len(objs))
	for i, o := range objs {
		k := KeyOf(o)
		if seen[k] {
			return i, true
		}
		seen[k] = true
	}
	return 0, false
}

// Early ranks of IsEarly's kinds, in apply order.
const (
	rankNamespace = iota
	rankCRD
	rankOther
)

// Rank orders kinds for applying: a Namespace (0) before a
// CustomResourceDefinition (1) before anything else (2), so that what other
// objects live in, or are kinds of, exists first.
func Rank(group, kind string) int {
	switch {
	case group == "" && kind == "Namespace":
		return rankNamespace
	case group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition":
		return rankCRD
	default:
		return rankOther
	}
}

// IsCRD reports whether group and kind name a CustomResourceDefinition.
func IsCRD(group, kind string) bool { return Rank(group, kind) == rankCRD }

// IsEarly reports whether objects of the kind are applied before all others
// (and so removed after them): a core Namespace or a CustomResourceDefinition.
func IsEarly(group, kind string) bool { return Rank(group, kind) < rankOther }

// Hash returns a stable digest of u's content: the hex of the first 16 bytes
// of SHA-256 over its JSON (encoding/json sorts map keys, so equal objects
// give equal bytes). It is unkeyed: never store it where the object's content
// is secret (see KeyedHash). Its error is the JSON encoder's.
func Hash(u *unstructured.Unstructured) (string, error) {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return "", fmt.Errorf("%s: hash: %w", String(u), err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// KeyedHash is Hash computed as HMAC-SHA256 with key: whoever reads the
// digest but lacks the key can neither recompute it nor test guesses of the
// content against it. It has the same length as Hash.
func KeyedHash(u *unstructured.Unstructured, key []byte) (string, error) {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return "", fmt.Errorf("%s: hash: %w", String(u), err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return hex.EncodeToString(mac.Sum(nil)[:16]), nil
}

// ShortSHA cuts a commit SHA to its first 12 characters for messages and
// tables, the one place Ferry shortens a SHA; a shorter string is returned
// as it is.
func ShortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
