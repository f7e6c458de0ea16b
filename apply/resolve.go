package apply

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// scope is where objects of a kind live, as far as ferry can tell.
type scope int

const (
	scopeUnknown scope = iota // neither discovery nor a CRD of the set says
	scopeNamespaced
	scopeCluster
)

// resolve returns the rendered objects as the cluster will place them, in
// their order: a namespaced kind without a namespace goes to "default", as
// kubectl would put it; a cluster-scoped kind loses a namespace it was given
// (kustomize gives one to kinds it does not know). The scope of a kind comes
// from discovery, else from a CustomResourceDefinition of the same set, else
// (a kind nobody serves or defines yet) from the object itself: no namespace
// means cluster-scoped, as Policy.Check assumes. It refuses an object
// declared twice, and sends no request but discovery's.
func (a *Applier) resolve(objs []*unstructured.Unstructured) ([]target, error) {
	defined := definedScopes(objs)
	scopes := map[schema.GroupKind]scope{}
	targets := make([]target, len(objs))
	seen := make(map[string]bool, len(objs))
	for i, o := range objs {
		ref := refOf(o)
		gk := schema.GroupKind{Group: ref.Group, Kind: ref.Kind}
		sc, ok := scopes[gk]
		if !ok {
			sc = a.scope(ref.gvk(), defined)
			scopes[gk] = sc
		}
		switch {
		case sc == scopeNamespaced && ref.Namespace == "":
			ref.Namespace = defaultNamespace
		case sc == scopeCluster:
			ref.Namespace = ""
		}
		targets[i] = target{ref: ref, cluster: sc == scopeCluster || (sc == scopeUnknown && ref.Namespace == "")}
		if seen[ref.key()] {
			return nil, fmt.Errorf("%s: declared twice in one apply", ref)
		}
		seen[ref.key()] = true
	}
	return targets, nil
}

// scope asks discovery where objects of gvk's kind live, then the CRDs of the set.
func (a *Applier) scope(gvk schema.GroupVersionKind, defined map[schema.GroupKind]scope) scope {
	if m, err := a.mapping(gvk); err == nil {
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			return scopeNamespaced
		}
		return scopeCluster
	}
	return defined[gvk.GroupKind()]
}

// definedScopes returns the scope of each kind a CustomResourceDefinition of
// objs defines.
func definedScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]scope {
	out := map[schema.GroupKind]scope{}
	for _, o := range objs {
		if !refOf(o).isCRD() {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		switch s, _, _ := unstructured.NestedString(o.Object, "spec", "scope"); s {
		case "Namespaced":
			out[schema.GroupKind{Group: group, Kind: kind}] = scopeNamespaced
		case "Cluster":
			out[schema.GroupKind{Group: group, Kind: kind}] = scopeCluster
		}
	}
	return out
}
