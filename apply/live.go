package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// liveObject is what one LIST tells about a live object of the inventory.
type liveObject struct {
	uid         string
	fields      string // hash of the fields ferry owns (its Apply managedFields entry)
	labels      map[string]string
	annotations map[string]string
	deleting    bool
	others      bool // other managers own fields too
}

// unserved is a kind of the inventory's no-longer-rendered objects that
// discovery does not list (a definite NoMatch), explained by a CRD ferry
// removes: the inventory held the CRD for the kind's group (CRD names are
// <plural>.<group>), and the CRD is either gone from the cluster already
// (crdGone: its objects went with it) or being pruned in this apply (its
// objects go with it if the prune succeeds).
type unserved struct {
	crd     entry
	crdGone bool
}

// observe lists the live objects carrying the inventory's labels, with one
// metadata-only LIST per kind (all namespaces, the kind's preferred version,
// ferry's own identity even when the Applier impersonates: an environment's
// account may see only its namespaces), and indexes them by Ref.key(). A kind that only desired objects are of and
// that the cluster does not serve (yet: its CRD may be in this set) has no
// objects and costs nothing. A kind of objects the inventory no longer
// renders must be listed, or else its objects would look gone and leave the
// inventory while still in the cluster: when discovery fails, or says the
// kind is not served and no CRD ferry removes explains it, observe returns a
// transient error and nothing is dropped. Unserved kinds that a removed CRD
// explains are returned apart.
func (a *Applier) observe(ctx context.Context, inv Inventory, desired []Ref, gone []entry, owned map[string]entry) (map[string]liveObject, map[schema.GroupKind]unserved, error) {
	kinds := map[schema.GroupKind]bool{} // kind -> has no-longer-rendered objects
	for _, ref := range desired {
		if gk := (schema.GroupKind{Group: ref.Group, Kind: ref.Kind}); !kinds[gk] {
			kinds[gk] = false
		}
	}
	goneKeys := make(map[string]bool, len(gone))
	for _, e := range gone {
		kinds[schema.GroupKind{Group: e.Group, Kind: e.Kind}] = true
		goneKeys[e.key()] = true
	}
	live := map[string]liveObject{}
	var notServed map[schema.GroupKind]unserved
	for gk, hasGone := range kinds {
		list, err := a.listKind(ctx, inv, gk)
		if err != nil && meta.IsNoMatchError(err) && !hasGone {
			continue // nothing of the inventory to lose; applying its objects reports it
		}
		if err != nil && meta.IsNoMatchError(err) {
			u, explained, err := a.removedCRD(ctx, gk, owned, goneKeys)
			if err != nil {
				return nil, nil, fmt.Errorf("inventory %s: %w", inv, err)
			}
			if !explained {
				return nil, nil, fmt.Errorf("inventory %s: %w; no CustomResourceDefinition ferry removed explains that, "+
					"so its objects stay in the inventory until discovery lists the kind again", inv, &transientError{err: err})
			}
			if notServed == nil {
				notServed = map[schema.GroupKind]unserved{}
			}
			notServed[gk] = u
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for _, item := range list.Items {
			ref := Ref{Group: gk.Group, Kind: gk.Kind, Namespace: item.Namespace, Name: item.Name}
			fields, others := ferryFields(item.ManagedFields)
			live[ref.key()] = liveObject{
				uid:         string(item.UID),
				fields:      fields,
				labels:      item.Labels,
				annotations: item.Annotations,
				deleting:    item.DeletionTimestamp != nil,
				others:      others,
			}
		}
	}
	return live, notServed, nil
}

// listKind lists the inventory's objects of a kind. A LIST answered 404
// means the resource is no longer served (its CRD was deleted since discovery
// was cached): discovery is refreshed and the kind resolved again, which then
// gives a NoMatch, returned as it is. Other errors lead with the inventory
// and carry their class (a discovery error is transient).
func (a *Applier) listKind(ctx context.Context, inv Inventory, gk schema.GroupKind) (*metav1.PartialObjectMetadataList, error) {
	for attempt := 0; ; attempt++ {
		m, err := a.mapping(gk.WithVersion(""))
		if meta.IsNoMatchError(err) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("inventory %s: %w", inv, err) // a discovery error, marked transient by mapping
		}
		list, err := a.metadata.Resource(m.Resource).List(ctx, metav1.ListOptions{LabelSelector: inv.selector()})
		if apierrors.IsNotFound(err) && attempt == 0 {
			a.mapper.Reset()
			continue
		}
		if apierrors.IsNotFound(err) {
			// Discovery lists it after a refresh, yet it is not served: a CRD
			// in flux. Retry later rather than guess.
			err = &transientError{err: err}
		}
		if err != nil {
			return nil, fmt.Errorf("inventory %s: list %s: %w", inv, m.Resource.Resource, mark(err))
		}
		return list, nil
	}
}

// crdResource is where CRDs are read without discovery, so that a broken
// discovery cannot make a CRD look gone.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// removedCRD finds the inventory's CRD for gk's group and reports whether it
// explains gk not being served: it is gone from the cluster (or being
// deleted), or it is among the objects being pruned now (goneKeys).
func (a *Applier) removedCRD(ctx context.Context, gk schema.GroupKind, owned map[string]entry, goneKeys map[string]bool) (unserved, bool, error) {
	for _, e := range owned {
		if !e.isCRD() {
			continue
		}
		if _, group, _ := strings.Cut(e.Name, "."); group != gk.Group {
			continue
		}
		crd, err := a.metadata.Resource(crdResource).Get(ctx, e.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return unserved{crd: e, crdGone: true}, true, nil
		case err != nil:
			return unserved{}, false, fmt.Errorf("%s: read: %w", e.Ref, mark(err))
		case crd.DeletionTimestamp != nil:
			return unserved{crd: e, crdGone: true}, true, nil
		case goneKeys[e.key()]:
			return unserved{crd: e}, true, nil
		}
		return unserved{}, false, nil
	}
	return unserved{}, false, nil
}

// ferryFields hashes the fields ferry's server-side apply owns. Another
// manager changing one of them (kubectl edit, a forced apply) takes it from
// ferry's set, so a different hash means drift. Status written by controllers
// lives in other entries and does not count. It also reports whether any
// other manager owns fields of the object (outside status).
func ferryFields(entries []metav1.ManagedFieldsEntry) (string, bool) {
	hash, others := "", false
	for _, e := range entries {
		switch {
		case e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "":
			if e.FieldsV1 != nil {
				sum := sha256.Sum256(e.FieldsV1.Raw)
				hash = hex.EncodeToString(sum[:16])
			}
		case e.Subresource == "":
			others = true
		}
	}
	return hash, others
}
