package apply

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	if cm, err := a.core.CoreV1().ConfigMaps(inventoryNS).Get(ctx, inv.configMapName(), metav1.GetOptions{}); err == nil {
		st.allowMassDelete = cm.Annotations[allowMassDeleteAn]
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
// the object is gone. It returns the changes, the entries to keep owning
// (those whose deletion failed, to retry), and the errors.
func (a *Applier) prune(ctx context.Context, inv Inventory, gone []entry, live map[string]liveObject) ([]Change, []entry, []error) {
	var changes []Change
	var kept []entry
	var errs []error
	for _, e := range gone {
		l, ok := live[e.key()]
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
			errs = append(errs, fmt.Errorf("%s: prune: %w", e.Ref, err))
			kept = append(kept, e)
			continue
		}
		changes = append(changes, Change{Ref: e.Ref, Action: Deleted})
	}
	return changes, kept, errs
}

// delete removes exactly the object that was listed (a UID precondition), with
// background propagation, and waits until it is gone.
func (a *Applier) delete(ctx context.Context, ref Ref, uid string) error {
	m, err := a.mapping(ref.gvk())
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
