package apply

import (
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ferry-gitops/ferry/internal/object"
)

// Labels and annotations ferry puts on every object it applies (DESIGN.md section 3).
const (
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	ManagedByFerry    = "ferry"
	LabelRepository   = "ferry.dev/repository"
	LabelEnvironment  = "ferry.dev/environment"
	AnnotationRev     = "ferry.dev/revision"
	AnnotationForce   = "ferry.dev/force"
	AnnotationPrune   = "ferry.dev/prune"
	PruneDisabled     = "disabled"
	PruneEnabled      = "enabled"
	FieldManager      = "ferry"
	inventoryNS       = "ferry-system"
	defaultNamespace  = "default"
	allowMassDeleteAn = "ferry.dev/allow-mass-delete"
)

// Ref identifies an object: group, kind, namespace and name. Its String form
// (Kind/namespace/name) leads every error about the object.
type Ref struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r Ref) String() string { return object.Ref(r.Kind, r.Namespace, r.Name) }

// key is the identity without the version (object.Key): one object served
// at two versions is still one object.
func (r Ref) key() string {
	return object.Key{Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}.String()
}

// early reports whether the object is applied before all others and pruned
// after them (a Namespace or a CRD).
func (r Ref) early() bool { return object.IsEarly(r.Group, r.Kind) }

// isCRD reports whether the object is a CustomResourceDefinition.
func (r Ref) isCRD() bool { return object.IsCRD(r.Group, r.Kind) }

func (r Ref) gvk() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

func refOf(u *unstructured.Unstructured) Ref {
	gvk := u.GroupVersionKind()
	return Ref{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Inventory names the set of objects one (repository, environment) owns in
// one cluster.
type Inventory struct {
	Repository  string
	Environment string
}

func (inv Inventory) String() string { return inv.Repository + "/" + inv.Environment }

// selector matches the objects of this inventory.
func (inv Inventory) selector() string {
	return fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelManagedBy, ManagedByFerry, LabelRepository, inv.Repository, LabelEnvironment, inv.Environment)
}

// owns reports whether a live object carries this inventory's labels.
func (inv Inventory) owns(labels map[string]string) bool {
	return labels[LabelManagedBy] == ManagedByFerry && labels[LabelRepository] == inv.Repository && labels[LabelEnvironment] == inv.Environment
}

// desired returns a copy of obj as ferry applies it: with the inventory's
// labels, and its plain hash (object.Hash), which leaves the revision
// annotation out so that a commit that does not change an object does not
// re-apply it. The inventory stores Applier.hash instead (see desiredHashed).
func (inv Inventory) desired(obj *unstructured.Unstructured, revision string) (*unstructured.Unstructured, string, error) {
	return inv.desiredHashed(obj, revision, object.Hash)
}

// desiredHashed is desired with the hash computed by hash.
func (inv Inventory) desiredHashed(obj *unstructured.Unstructured, revision string, hash func(*unstructured.Unstructured) (string, error)) (*unstructured.Unstructured, string, error) {
	u := obj.DeepCopy()
	labels := maps.Clone(u.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManagedBy] = ManagedByFerry
	labels[LabelRepository] = inv.Repository
	labels[LabelEnvironment] = inv.Environment
	u.SetLabels(labels)
	sum, err := hash(u)
	if err != nil {
		return nil, "", err // object.Hash leads with the object
	}
	if revision != "" {
		annotations := maps.Clone(u.GetAnnotations())
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[AnnotationRev] = revision
		u.SetAnnotations(annotations)
	}
	return u, sum, nil
}
