package object

import (
	"regexp"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Action is what happens to one object between two sets.
type Action string

const (
	Added   Action = "added"
	Changed Action = "changed"
	Removed Action = "removed"
)

// Change is one object that differs between two sets.
type Change struct {
	Key Key
	// Ref is Kind/namespace/name, as String formats it.
	Ref    string
	Action Action
	// Diff is a unified diff of the object, Secret values masked.
	Diff string
}

// revisionAnnotation changes with every commit that changes an object; a
// diff that showed it would show noise.
const revisionAnnotation = "ferry.dev/revision"

// Diff compares two rendered sets of objects and returns those added,
// changed and removed: first in after's order, then the removed in before's.
// Each carries a unified diff with Secret values masked ("***", or
// "*** (changed)" where a value differs).
//
// The name suffix kustomize's generators append (a hash of the content, e.g.
// settings-7c9f8dk2mb) changes whenever the content does. Without care, one
// changed ConfigMap would show as one removed, one added, and every object
// that refers to it as changed. So a generated name is written with its
// suffix as "<hash>" on both sides: the ConfigMap shows as changed where its
// data did, and a reference whose only change is the suffix does not show.
func Diff(before, after []*unstructured.Unstructured) []Change {
	hashed := generatedNames(before, after)
	old := make(map[Key]*unstructured.Unstructured, len(before))
	for _, o := range before {
		old[normalKey(o, hashed)] = o
	}
	var out []Change
	seen := make(map[Key]bool, len(after))
	for _, o := range after {
		k := normalKey(o, hashed)
		seen[k] = true
		prev, existed := old[k]
		d := unified(String(o), prev, o, hashed, "before", "after")
		switch {
		case !existed:
			out = append(out, Change{Key: KeyOf(o), Ref: String(o), Action: Added, Diff: d})
		case d != "":
			out = append(out, Change{Key: KeyOf(o), Ref: String(o), Action: Changed, Diff: d})
		}
	}
	for _, o := range before {
		if !seen[normalKey(o, hashed)] {
			out = append(out, Change{Key: KeyOf(o), Ref: String(o), Action: Removed, Diff: unified(String(o), o, nil, hashed, "before", "after")})
		}
	}
	return out
}

// Unified renders a unified diff of one object as it is (live, nil when
// absent) and as it would be (desired, nil when it would be gone), leaving
// out what the API server sets (managed fields, resource version, status …)
// and ferry's revision annotation, and masking Secret values. Equal objects
// give "".
func Unified(name string, live, desired *unstructured.Unstructured) string {
	return unified(name, live, desired, nil, "live", "desired")
}

func unified(name string, before, after *unstructured.Unstructured, hashed map[string]string, from, to string) string {
	a, b := printable(before, nil, hashed), printable(after, before, hashed)
	if a == b {
		return ""
	}
	out, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: name + " (" + from + ")", ToFile: name + " (" + to + ")", Context: 3,
	})
	return out
}

// printable is u as YAML for a diff; old is the other side, for masking.
func printable(u, old *unstructured.Unstructured, hashed map[string]string) string {
	if u == nil {
		return ""
	}
	c := u.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration")
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", revisionAnnotation)
	if len(c.GetAnnotations()) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	}
	unstructured.RemoveNestedField(c.Object, "status")
	if IsSecret(c) {
		maskSecret(c, old)
	}
	b, _ := yaml.Marshal(c.Object)
	s := string(b)
	for name, normal := range hashed {
		s = strings.ReplaceAll(s, name, normal)
	}
	return s
}

// IsSecret reports whether u is a core Secret, whose values are never shown.
func IsSecret(u *unstructured.Unstructured) bool {
	return u.GetKind() == "Secret" && u.GroupVersionKind().Group == ""
}

// maskSecret replaces every value of a Secret with "***". Given the other
// version, values that differ from it read "*** (changed)", so a diff shows
// which keys change but never a value.
func maskSecret(s, old *unstructured.Unstructured) {
	for _, field := range []string{"data", "stringData"} {
		values, _, _ := unstructured.NestedMap(s.Object, field)
		var oldValues map[string]any
		if old != nil {
			oldValues, _, _ = unstructured.NestedMap(old.Object, field)
		}
		for k, v := range values {
			if ov, ok := oldValues[k]; ok && ov != v {
				values[k] = "*** (changed)"
			} else {
				values[k] = "***"
			}
		}
		if len(values) > 0 {
			unstructured.SetNestedMap(s.Object, values, field)
		}
	}
}

// hashSuffix is the suffix kustomize's generators add: a dash and ten
// characters of its hash alphabet (hex with 0, 1, 3, a and e replaced).
var hashSuffix = regexp.MustCompile(`^(.+)-[2456789bcdfghkmt]{10}$`)

// generatedNames maps each generated ConfigMap or Secret name of either set
// to its normal form, base-<hash>.
func generatedNames(sets ...[]*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for _, set := range sets {
		for _, o := range set {
			if o.GroupVersionKind().Group != "" || (o.GetKind() != "ConfigMap" && o.GetKind() != "Secret") {
				continue
			}
			if m := hashSuffix.FindStringSubmatch(o.GetName()); m != nil {
				out[o.GetName()] = m[1] + "-<hash>"
			}
		}
	}
	return out
}

func normalKey(o *unstructured.Unstructured, hashed map[string]string) Key {
	k := KeyOf(o)
	if normal, ok := hashed[k.Name]; ok && (k.Kind == "ConfigMap" || k.Kind == "Secret") {
		k.Name = normal
	}
	return k
}
