package apply

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var namespaceResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// checkLive adds to refused (by target index) what only the cluster can tell:
//
//   - a rendered object whose live twin carries another inventory's labels
//     (app.kubernetes.io/managed-by=ferry and another repository or
//     environment): ferry never adopts nor relabels it;
//   - under Policy's default namespaces, a declared Namespace that already
//     exists and is not this inventory's: a render may create a namespace,
//     not take one over.
//
// Only targets missing from live (this inventory's LIST) can be either, so an
// idle resync costs nothing here. For those it lists, per kind, the objects
// of every inventory (selecting managed-by=ferry), in their one namespace
// when they share one, else in all; and reads each such Namespace. It reads
// with ferry's own identity, like observe, and never writes. A failed read
// is returned (transient when its cause is) and refuses nothing.
func (a *Applier) checkLive(ctx context.Context, inv Inventory, p *Policy, targets []target, live map[string]liveObject, refused []error) error {
	namespaces := map[schema.GroupKind]map[string]bool{}
	var candidates []int
	for i, t := range targets {
		if refused[i] != nil {
			continue
		}
		if _, ours := live[t.ref.key()]; ours {
			continue
		}
		candidates = append(candidates, i)
		if namespaces[t.groupKind()] == nil {
			namespaces[t.groupKind()] = map[string]bool{}
		}
		namespaces[t.groupKind()][t.ref.Namespace] = true
	}
	if len(candidates) == 0 {
		return nil
	}

	labels := map[string]map[string]string{} // by Ref.key(): the labels of ferry's live objects
	for gk, in := range namespaces {
		ns := "" // all namespaces, or cluster-scoped
		if len(in) == 1 {
			for n := range in {
				ns = n
			}
		}
		m, err := a.mapping(gk.WithVersion(""))
		if meta.IsNoMatchError(err) {
			continue // not served: no object of the kind exists
		}
		if err != nil {
			return fmt.Errorf("inventory %s: %w", inv, err)
		}
		list, err := a.metadata.Resource(m.Resource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedByFerry})
		if err != nil {
			return fmt.Errorf("inventory %s: list %s managed by ferry: %w", inv, m.Resource.Resource, mark(err))
		}
		for _, o := range list.Items {
			labels[Ref{Group: gk.Group, Kind: gk.Kind, Namespace: o.Namespace, Name: o.Name}.key()] = o.Labels
		}
	}

	for _, i := range candidates {
		t := targets[i]
		if l, ok := labels[t.ref.key()]; ok && !inv.owns(l) {
			refused[i] = &ObjectError{Ref: t.ref, Op: "policy", Msg: foreign(inv, l)}
			continue
		}
		if p == nil || p.Namespaces != nil || !t.isNamespace() {
			continue
		}
		_, err := a.metadata.Resource(namespaceResource).Get(ctx, t.ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("%s: read: %w", t.ref, mark(err))
		default:
			refused[i] = &ObjectError{Ref: t.ref, Op: "policy", Msg: fmt.Sprintf(
				"namespace %s exists and is not %s's: a render may create a namespace, not take one over; to write there, list %s in policy.namespaces of environment %s in ferry.yaml",
				t.ref.Name, inv, t.ref.Name, inv.Environment)}
		}
	}
	return nil
}

// foreign says whose an object labelled by another inventory is.
func foreign(inv Inventory, labels map[string]string) string {
	repo, env := labels[LabelRepository], labels[LabelEnvironment]
	if repo == "" || env == "" {
		return fmt.Sprintf("it is labelled %s=%s without a repository and environment, so it may be another inventory's; ferry never takes it over: rename it, or remove the label if %s should own it",
			LabelManagedBy, ManagedByFerry, inv)
	}
	owner := Inventory{Repository: repo, Environment: env}
	return fmt.Sprintf("it belongs to %s (labels %s=%s, %s=%s), and ferry never takes over another environment's object: rename it here, or remove it from %s first",
		owner, LabelRepository, repo, LabelEnvironment, env, owner)
}

// refusal is the ChangeSet of a set the policy refused: each refused object
// Failed with its reason, the others Skipped, and nothing pruned.
func (p *plan) refusal() *ChangeSet {
	n := 0
	for _, err := range p.refused {
		if err != nil {
			n++
		}
	}
	objects := "objects"
	if n == 1 {
		objects = "object"
	}
	cs := &ChangeSet{}
	for i, t := range p.targets {
		if oe, ok := p.refused[i].(*ObjectError); ok {
			cs.Changes = append(cs.Changes, Change{Ref: t.ref, Action: Failed, Reason: oe.Msg})
			continue
		}
		cs.Changes = append(cs.Changes, Change{Ref: t.ref, Action: Skipped, Reason: fmt.Sprintf("not applied: the policy refused %d %s of this set", n, objects)})
	}
	for _, e := range p.gone {
		cs.Changes = append(cs.Changes, Change{Ref: e.Ref, Action: Skipped, Reason: fmt.Sprintf("not pruned: the policy refused %d %s of this set", n, objects)})
	}
	return cs
}
