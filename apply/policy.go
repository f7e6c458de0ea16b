package apply

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Policy is what one environment may write (ferry.yaml's
// environments[].policy, DESIGN.md sections 2 and 3). Apply and Diff check
// it before any request that writes; Check checks it without a cluster.
//
// Whatever the policy says, no object may be written in ferry's own
// namespace (FerryNamespace) or in ferry-system (the inventories, in every
// cluster), nor may the Namespace objects of those names; and Apply and Diff
// refuse an object whose live twin carries another inventory's labels.
type Policy struct {
	// Namespaces are the namespaces the environment may write: namespaced
	// objects in them, and the Namespace objects of those names. nil means
	// the default: the namespaces the rendered set declares as Namespace
	// objects, except default, kube-system, kube-public and kube-node-lease,
	// which only a list grants; in a cluster, a declared Namespace that
	// already exists and is not this inventory's is refused too (a render
	// may create a namespace, not take one over). A list replaces the
	// default: a Namespace object the render declares must be in it too. An
	// empty, non-nil list grants no namespace.
	Namespaces []string
	// ClusterKinds are the cluster-scoped kinds the environment may write,
	// spelt as schema.GroupKind prints them: Kind for the core group,
	// Kind.group otherwise (ClusterRole.rbac.authorization.k8s.io,
	// CustomResourceDefinition.apiextensions.k8s.io), never a version. nil
	// means Namespace only; a list replaces that default.
	ClusterKinds []string
	// FerryNamespace is the namespace ferry runs in; "" means ferry-system.
	FerryNamespace string
}

// DefaultFerryNamespace is the namespace ferry runs in unless configured, and
// the one that holds the inventories in every cluster.
const DefaultFerryNamespace = inventoryNS

// reservedNamespaces are granted only by a Policy's explicit Namespaces:
// declaring one of them as a Namespace object does not grant it.
var reservedNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

var namespaceKind = schema.GroupKind{Kind: "Namespace"}

// target is an object as the policy sees it: its Ref (in Apply, with the
// namespace the cluster will place it in) and whether it is cluster-scoped.
type target struct {
	ref     Ref
	cluster bool
}

func (t target) groupKind() schema.GroupKind {
	return schema.GroupKind{Group: t.ref.Group, Kind: t.ref.Kind}
}

func (t target) isNamespace() bool { return t.groupKind() == namespaceKind }

// Check reports every object of objs that p refuses for inv: one
// *ObjectError per refused object (Op "policy", bad input: IsTransient is
// false), each naming the object, the rule and where in ferry.yaml to change
// it, joined with errors.Join; nil when p allows them all. It sends no
// request, so an object without metadata.namespace counts as cluster-scoped
// (kustomize sets the namespace of namespaced kinds). Apply and Diff check
// the same rules with the cluster's discovery instead: there a namespaced
// kind without a namespace goes to "default", which must then be allowed.
func (p Policy) Check(inv Inventory, objs []*unstructured.Unstructured) error {
	targets := make([]target, len(objs))
	for i, o := range objs {
		ref := refOf(o)
		targets[i] = target{ref: ref, cluster: ref.Namespace == ""}
	}
	return errors.Join(checkPolicy(&p, inv, targets)...)
}

// checkPolicy applies p (nil: only what is always refused) to targets and
// returns, index by index, the refusal of each target or nil.
func checkPolicy(p *Policy, inv Inventory, targets []target) []error {
	r := newRules(p, inv, targets)
	refused := make([]error, len(targets))
	for i, t := range targets {
		if msg := r.refuse(t); msg != "" {
			refused[i] = &ObjectError{Ref: t.ref, Op: "policy", Msg: msg}
		}
	}
	return refused
}

// rules is a Policy made ready for one set of objects.
type rules struct {
	inv Inventory
	// ferry are the namespaces nothing may write.
	ferry []string
	// namespaces are those that may be written; nil: any (no Policy).
	namespaces []string
	// listed is true when namespaces came from Policy.Namespaces.
	listed bool
	// kinds are the cluster-scoped kinds allowed; nil: any (no Policy).
	kinds []schema.GroupKind
}

func newRules(p *Policy, inv Inventory, targets []target) rules {
	r := rules{inv: inv, ferry: []string{inventoryNS}}
	if p == nil {
		return r
	}
	if p.FerryNamespace != "" && p.FerryNamespace != inventoryNS {
		r.ferry = append(r.ferry, p.FerryNamespace)
	}
	r.namespaces, r.listed = p.Namespaces, p.Namespaces != nil
	if !r.listed {
		r.namespaces = []string{}
		for _, t := range targets {
			if t.isNamespace() && !slices.Contains(reservedNamespaces, t.ref.Name) {
				r.namespaces = append(r.namespaces, t.ref.Name)
			}
		}
	}
	r.kinds = []schema.GroupKind{namespaceKind}
	if p.ClusterKinds != nil {
		r.kinds = make([]schema.GroupKind, 0, len(p.ClusterKinds))
		for _, k := range p.ClusterKinds {
			r.kinds = append(r.kinds, schema.ParseGroupKind(k))
		}
	}
	return r
}

// refuse says why t is refused, or "" when it is allowed.
func (r rules) refuse(t target) string {
	if t.cluster {
		if r.kinds != nil && !slices.Contains(r.kinds, t.groupKind()) {
			return fmt.Sprintf("the cluster-scoped kind %s is not one %s may write (allowed: %s); to allow it, add %q to policy.clusterKinds of environment %s in ferry.yaml",
				t.groupKind(), r.inv, r.kindList(), t.groupKind().String(), r.inv.Environment)
		}
		if !t.isNamespace() {
			return ""
		}
		if slices.Contains(r.ferry, t.ref.Name) {
			return fmt.Sprintf("namespace %s is ferry's own; no environment may declare it", t.ref.Name)
		}
		return r.refuseNamespace(t.ref.Name, "declare")
	}
	if slices.Contains(r.ferry, t.ref.Namespace) {
		return fmt.Sprintf("namespace %s is ferry's own; no environment may write there", t.ref.Namespace)
	}
	return r.refuseNamespace(t.ref.Namespace, "write")
}

// refuseNamespace says why ns may not be written (or declared), or "".
func (r rules) refuseNamespace(ns, verb string) string {
	switch {
	case r.namespaces == nil || slices.Contains(r.namespaces, ns):
		return ""
	case r.listed:
		return fmt.Sprintf("namespace %s is not one %s may %s (policy.namespaces: %s); to allow it, add %s to policy.namespaces of environment %s in ferry.yaml",
			ns, r.inv, verb, list(r.namespaces), ns, r.inv.Environment)
	case slices.Contains(reservedNamespaces, ns):
		return fmt.Sprintf("namespace %s is reserved: declaring it does not grant it; to allow it, list it in policy.namespaces of environment %s in ferry.yaml",
			ns, r.inv.Environment)
	}
	return fmt.Sprintf("namespace %s is not declared by this render, and %s may write only the namespaces it declares (%s); declare it as a Namespace, or list the namespaces in policy.namespaces of environment %s in ferry.yaml",
		ns, r.inv, list(r.namespaces), r.inv.Environment)
}

func (r rules) kindList() string {
	names := make([]string, len(r.kinds))
	for i, k := range r.kinds {
		names[i] = k.String()
	}
	return list(names)
}

// list prints names for a message: "a, b", or "none".
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
