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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	// health is the object's readiness as listed: computed from the whole
	// object for kinds with a status, Current (unless deleting) for the
	// kinds that have none (statusless).
	health Health
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
// LIST per kind (in the namespace all the inventory's objects of the kind
// share, else in all; the kind's preferred version; ferry's own identity
// even when the Applier impersonates: an environment's account may see only
// its namespaces), and indexes them by Ref.key(). Kinds without a status are
// listed as metadata only; the others whole, so that their health is known
// from the same LIST and an apply that changes nothing needs no Wait. A kind that only desired objects are of and
// that the cluster does not serve (yet: its CRD may be in this set) has no
// objects and costs nothing. A kind of objects the inventory no longer
// renders must be listed, or else its objects would look gone and leave the
// inventory while still in the cluster: when discovery fails, or says the
// kind is not served and no CRD ferry removes explains it, observe returns a
// transient error and nothing is dropped. Unserved kinds that a removed CRD
// explains are returned apart.
func (a *Applier) observe(ctx context.Context, inv Inventory, desired []Ref, gone []entry, owned map[string]entry) (map[string]liveObject, map[schema.GroupKind]unserved, error) {
	kinds := map[schema.GroupKind]bool{}                 // kind -> has no-longer-rendered objects
	namespaces := map[schema.GroupKind]map[string]bool{} // kind -> the namespaces of its objects
	note := func(ref Ref) schema.GroupKind {
		gk := schema.GroupKind{Group: ref.Group, Kind: ref.Kind}
		if namespaces[gk] == nil {
			namespaces[gk] = map[string]bool{}
		}
		namespaces[gk][ref.Namespace] = true
		return gk
	}
	for _, ref := range desired {
		if gk := note(ref); !kinds[gk] {
			kinds[gk] = false
		}
	}
	goneKeys := make(map[string]bool, len(gone))
	for _, e := range gone {
		kinds[note(e.Ref)] = true
		goneKeys[e.key()] = true
	}
	live := map[string]liveObject{}
	var notServed map[schema.GroupKind]unserved
	for gk, hasGone := range kinds {
		namespace := ""
		if len(namespaces[gk]) == 1 {
			for ns := range namespaces[gk] {
				namespace = ns
			}
		}
		list, err := a.listKind(ctx, inv, gk, namespace)
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
		for _, o := range list {
			ref := Ref{Group: gk.Group, Kind: gk.Kind, Namespace: o.meta.Namespace, Name: o.meta.Name}
			fields, others := ferryFields(o.meta.ManagedFields)
			l := liveObject{
				uid:         string(o.meta.UID),
				fields:      fields,
				labels:      o.meta.Labels,
				annotations: o.meta.Annotations,
				deleting:    o.meta.DeletionTimestamp != nil,
				others:      others,
				health:      Health{Ref: ref, Status: Current},
			}
			switch {
			case l.deleting:
				l.health.Status, l.health.Message = InProgress, "being deleted"
			case o.whole != nil:
				l.health.Status, l.health.Message = health(o.whole)
			}
			live[ref.key()] = l
		}
	}
	return live, notServed, nil
}

// statusless are the kinds whose objects have no status to wait for: one
// that exists and is not being deleted is Current (as kstatus says), so a
// metadata LIST tells all. Every other kind is listed whole.
var statusless = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}: true, {Kind: "Secret"}: true, {Kind: "ServiceAccount"}: true, {Kind: "Namespace"}: true,
	{Kind: "LimitRange"}: true, {Kind: "ResourceQuota"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}: true, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}: true, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}: true, {Group: "scheduling.k8s.io", Kind: "PriorityClass"}: true,
}

// listed is one object a LIST returned: its metadata, and the whole object
// for a kind with a status.
type listed struct {
	meta  metav1.ObjectMeta
	whole *unstructured.Unstructured
}

// listKind lists the inventory's objects of a kind, in namespace ("" for
// all, or a cluster-scoped kind): metadata only for a statusless kind, whole
// objects for the others. A LIST answered 404 means the resource is no longer
// served (its CRD was deleted since discovery was cached): discovery is
// refreshed and the kind resolved again, which then gives a NoMatch, returned
// as it is. Other errors lead with the inventory and carry their class (a
// discovery error is transient).
func (a *Applier) listKind(ctx context.Context, inv Inventory, gk schema.GroupKind, namespace string) ([]listed, error) {
	for attempt := 0; ; attempt++ {
		m, err := a.mapping(gk.WithVersion(""))
		if meta.IsNoMatchError(err) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("inventory %s: %w", inv, err) // a discovery error, marked transient by mapping
		}
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			namespace = ""
		}
		opts := metav1.ListOptions{LabelSelector: inv.selector()}
		var out []listed
		if statusless[gk] {
			var list *metav1.PartialObjectMetadataList
			if list, err = a.metadata.Resource(m.Resource).Namespace(namespace).List(ctx, opts); err == nil {
				out = make([]listed, len(list.Items))
				for i := range list.Items {
					out[i].meta = list.Items[i].ObjectMeta
				}
			}
		} else {
			var list *unstructured.UnstructuredList
			if list, err = a.ownDynamic.Resource(m.Resource).Namespace(namespace).List(ctx, opts); err == nil {
				out = make([]listed, len(list.Items))
				for i := range list.Items {
					u := &list.Items[i]
					out[i] = listed{meta: objectMeta(u), whole: u}
				}
			}
		}
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
		return out, nil
	}
}

// objectMeta is the metadata observe reads, from a whole object.
func objectMeta(u *unstructured.Unstructured) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: u.GetNamespace(), Name: u.GetName(), UID: u.GetUID(),
		Labels: u.GetLabels(), Annotations: u.GetAnnotations(),
		DeletionTimestamp: u.GetDeletionTimestamp(), ManagedFields: u.GetManagedFields(),
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
