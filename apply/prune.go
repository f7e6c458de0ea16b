package apply

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferry-gitops/ferry/internal/object"
)

// neverPruned are kinds whose deletion loses data or takes everything inside
// with it; they are pruned only when annotated ferry.dev/prune: enabled.
var neverPruned = map[string]bool{
	"/Namespace":             true,
	"/PersistentVolumeClaim": true,
	"apiextensions.k8s.io/CustomResourceDefinition": true,
}

// MassDeleteError is the guard refusing a prune that would remove more than
// half of an inventory, or all of it. Nothing was pruned.
type MassDeleteError struct {
	Inventory    Inventory
	ConfigMap    string
	Revision     string
	Deleting, Of int
}

func (e *MassDeleteError) Error() string {
	return fmt.Sprintf("inventory %s: this render would delete %d of the %d objects ferry manages, so nothing was pruned; "+
		"if that is intended, confirm with `kubectl -n %s annotate configmap %s %s=%s` or run `ferry sync --allow-mass-delete`",
		e.Inventory, e.Deleting, e.Of, inventoryNS, e.ConfigMap, allowMassDeleteAn, e.Revision)
}

// guard refuses a prune of more than half the inventory, or all of it,
// unless the request allows it or a person annotated the inventory with this
// revision.
func (a *Applier) guard(ctx context.Context, inv Inventory, st *inventoryState, deleting int, req Request) error {
	total := len(st.entries)
	if deleting == 0 || req.AllowMassDelete || !(deleting == total || 2*deleting > total) {
		return nil
	}
	// The confirmation is added by a person after the refusal: read it fresh.
	// Annotating moved the resourceVersion; when the entries are still the
	// ones planned from, the inventory follows it, so the apply's writes are
	// not refused as a conflict with that person.
	// Entries that differ from the ones planned from (ferry sync
	// --allow-mass-delete pruned them, another replica applied) make the
	// count wrong: the copy is dropped and the apply retried on what the
	// cluster holds, rather than refused on what it no longer does.
	if cm, err := a.core.CoreV1().ConfigMaps(inventoryNS).Get(ctx, inv.configMapName(), metav1.GetOptions{}); err == nil {
		if planned := string(st.written); cm.Data["objects"] != planned && !(planned == "" && cm.Data["objects"] == "[]") {
			a.Forget(inv)
			return fmt.Errorf("inventory %s: %w", inv, &transientError{err: errChangedMeanwhile})
		}
		st.allowMassDelete = cm.Annotations[allowMassDeleteAn]
		st.resourceVersion = cm.ResourceVersion
		st.holder, st.heldUntil = cm.Annotations[annotationHeldBy], cm.Annotations[annotationHeldUntil]
	}
	if req.Revision != "" && st.allowMassDelete == req.Revision {
		return nil
	}
	return &MassDeleteError{Inventory: inv, ConfigMap: inv.configMapName(), Revision: req.Revision, Deleting: deleting, Of: total}
}

// prune deletes the objects of the previous inventory that are no longer
// rendered, but only those that still carry this inventory's labels (so an
// object someone else took over, or recreated without ferry's labels, is left
// alone), are not annotated ferry.dev/prune: disabled, and are not of a kind
// that is never pruned. Deletion uses background propagation and waits until
// the object is gone. Objects go before the CRDs that define their kinds and
// Namespaces last, the reverse of apply order. Objects of a kind that is no
// longer served (p.unserved) went with their CRD when it is gone; when it is
// pruned now, they go with it if its deletion succeeds and are kept
// otherwise. It returns the changes, the entries to keep owning (those whose
// deletion failed, to retry), and the errors, each leading with its object.
func (a *Applier) prune(ctx context.Context, inv Inventory, p *plan) ([]Change, []entry, []error) {
	gone := slices.Clone(p.gone)
	order := func(e entry) int {
		if _, ok := p.unserved[schema.GroupKind{Group: e.Group, Kind: e.Kind}]; ok {
			return 3 // decided by its CRD's outcome
		}
		return 2 - object.Rank(e.Group, e.Kind) // others, then CRDs, then Namespaces
	}
	slices.SortFunc(gone, func(x, y entry) int {
		return cmp.Or(cmp.Compare(order(x), order(y)), strings.Compare(x.key(), y.key()))
	})

	var changes []Change
	var kept []entry
	var errs []error
	deleted := map[string]bool{}
	for _, e := range gone {
		if u, ok := p.unserved[schema.GroupKind{Group: e.Group, Kind: e.Kind}]; ok {
			switch {
			case u.crdGone:
				changes = append(changes, Change{Ref: e.Ref, Action: Skipped, Reason: "already gone with " + u.crd.String()})
			case deleted[u.crd.key()]:
				changes = append(changes, Change{Ref: e.Ref, Action: Deleted, Reason: "with " + u.crd.String()})
			default:
				changes = append(changes, Change{Ref: e.Ref, Action: Skipped, Reason: "its kind is not served and " + u.crd.String() + " was not pruned; kept"})
				kept = append(kept, e)
			}
			continue
		}
		l, ok := p.live[e.key()]
		switch {
		case !ok:
			changes = append(changes, Change{Ref: e.Ref, Action: Skipped, Reason: "already gone, or no longer labelled as ferry's"})
			continue
		case !inv.owns(l.labels):
			changes = append(changes, Change{Ref: e.Ref, Action: Skipped, Reason: "no longer labelled as this environment's"})
			continue
		case l.annotations[AnnotationPrune] == PruneDisabled:
			changes = append(changes, Change{Ref: e.Ref, Action: Skipped, Reason: "prune disabled by annotation"})
			continue
		case neverPruned[e.Group+"/"+e.Kind] && l.annotations[AnnotationPrune] != PruneEnabled:
			changes = append(changes, Change{Ref: e.Ref, Action: Skipped, Reason: fmt.Sprintf("a %s is pruned only when annotated %s: %s", e.Kind, AnnotationPrune, PruneEnabled)})
			continue
		}
		if err := a.delete(ctx, e.Ref, l.uid); err != nil {
			changes = append(changes, Change{Ref: e.Ref, Action: Failed, Reason: err.Error()})
			errs = append(errs, fmt.Errorf("%s: prune: %w", e.Ref, mark(err)))
			kept = append(kept, e)
			continue
		}
		deleted[e.key()] = true
		changes = append(changes, Change{Ref: e.Ref, Action: Deleted})
	}
	return changes, kept, errs
}

// delete removes exactly the object that was listed (a UID precondition), with
// background propagation, and waits until it is gone.
func (a *Applier) delete(ctx context.Context, ref Ref, uid string) error {
	// Any served version reaches the object: the one it was applied at may
	// no longer be served.
	m, err := a.mapping(schema.GroupVersionKind{Group: ref.Group, Kind: ref.Kind})
	if err != nil {
		return err
	}
	client := a.resource(m, ref.Namespace)
	policy := metav1.DeletePropagationBackground
	uidp := types.UID(uid)
	err = client.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uidp}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return waitGone(ctx, func(ctx context.Context) error {
		obj, err := client.Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil && string(obj.GetUID()) != uid {
			return apierrors.NewNotFound(m.Resource.GroupResource(), ref.Name) // replaced by a new object
		}
		return err
	})
}
