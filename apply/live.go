package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

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

// observe lists the live objects carrying the inventory's labels, with one
// metadata-only LIST per kind (all namespaces), and indexes them by Ref.key().
// Kinds the cluster does not serve have no objects and cost nothing.
func (a *Applier) observe(ctx context.Context, inv Inventory, refs []Ref) (map[string]liveObject, error) {
	kinds := map[schema.GroupKind]string{}
	for _, r := range refs {
		kinds[schema.GroupKind{Group: r.Group, Kind: r.Kind}] = r.Version
	}
	live := map[string]liveObject{}
	for gk, version := range kinds {
		m, err := a.mapping(gk.WithVersion(version))
		if err != nil {
			continue // not served (yet): nothing of it exists
		}
		list, err := a.metadata.Resource(m.Resource).List(ctx, metav1.ListOptions{LabelSelector: inv.selector()})
		if err != nil {
			return nil, fmt.Errorf("inventory %s: list %s: %w", inv, m.Resource.Resource, err)
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
	return live, nil
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
