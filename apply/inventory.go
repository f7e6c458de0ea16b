package apply

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// entry is one object of an inventory, as stored in its ConfigMap.
type entry struct {
	Ref
	// Hash is the object's desired state at the last successful apply.
	Hash string `json:"hash"`
	// Fields is the hash of the fields ferry owned right after that apply;
	// a live object whose ferry-owned fields differ has drifted.
	Fields string `json:"fields"`
}

// inventoryState is an inventory as loaded: its entries, and the data last
// written, so an unchanged inventory costs no write.
type inventoryState struct {
	entries map[string]entry // by Ref.key()
	written []byte
	// revision is the commit of the last apply, kept on the ConfigMap so
	// that a restarted ferry knows where each environment stands.
	revision string
	// allowMassDelete is the revision a person confirmed a large prune for,
	// by annotating the inventory ConfigMap.
	allowMassDelete string
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// configMapName is a valid, collision-free name for an inventory's ConfigMap.
func (inv Inventory) configMapName() string {
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(inv.Repository+"-"+inv.Environment), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	sum := sha256.Sum256([]byte(inv.Repository + "\x00" + inv.Environment))
	return "ferry-inventory-" + base + "-" + hex.EncodeToString(sum[:4])
}

// loadInventory returns the inventory, from memory when this applier wrote it,
// else from its ConfigMap (one GET), else empty.
func (a *Applier) loadInventory(ctx context.Context, inv Inventory) (*inventoryState, error) {
	a.mu.Lock()
	st, ok := a.inventories[inv.String()]
	a.mu.Unlock()
	if ok {
		return st, nil
	}
	st = &inventoryState{entries: map[string]entry{}}
	cm, err := a.core.CoreV1().ConfigMaps(inventoryNS).Get(ctx, inv.configMapName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("inventory %s: read ConfigMap %s/%s: %w", inv, inventoryNS, inv.configMapName(), mark(err))
	}
	var entries []entry
	if err := json.Unmarshal([]byte(cm.Data["objects"]), &entries); err != nil {
		return nil, fmt.Errorf("inventory %s: ConfigMap %s/%s is corrupt: %w; delete it to start over (nothing will be pruned until the next apply)", inv, inventoryNS, cm.Name, err)
	}
	for _, e := range entries {
		st.entries[e.key()] = e
	}
	st.written = []byte(cm.Data["objects"])
	st.revision = cm.Annotations[AnnotationRev]
	st.allowMassDelete = cm.Annotations[allowMassDeleteAn]
	return st, nil
}

// saveInventory writes the entries when they differ from what is stored, with
// server-side apply, creating the ferry-system namespace when missing.
func (a *Applier) saveInventory(ctx context.Context, inv Inventory, st *inventoryState, entries map[string]entry, revision string) error {
	list := make([]entry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	slices.SortFunc(list, func(x, y entry) int { return strings.Compare(x.key(), y.key()) })
	data, err := json.Marshal(list)
	if err != nil {
		return fmt.Errorf("inventory %s: %w", inv, err)
	}
	if bytes.Equal(data, st.written) && revision == st.revision {
		st.entries = entries
		return nil
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	cm := corev1ac.ConfigMap(inv.configMapName(), inventoryNS).
		WithLabels(map[string]string{LabelManagedBy: ManagedByFerry}).
		WithAnnotations(map[string]string{LabelRepository: inv.Repository, LabelEnvironment: inv.Environment, AnnotationRev: revision}).
		WithData(map[string]string{"objects": string(data)})
	_, err = a.core.CoreV1().ConfigMaps(inventoryNS).Apply(ctx, cm, opts)
	if apierrors.IsNotFound(err) {
		ns := corev1ac.Namespace(inventoryNS).WithLabels(map[string]string{LabelManagedBy: ManagedByFerry})
		if _, err := a.core.CoreV1().Namespaces().Apply(ctx, ns, opts); err != nil {
			return fmt.Errorf("inventory %s: create namespace %s: %w", inv, inventoryNS, mark(err))
		}
		_, err = a.core.CoreV1().ConfigMaps(inventoryNS).Apply(ctx, cm, opts)
	}
	if err != nil {
		return fmt.Errorf("inventory %s: write ConfigMap %s/%s: %w", inv, inventoryNS, inv.configMapName(), mark(err))
	}
	st.entries, st.written, st.revision = entries, data, revision
	a.mu.Lock()
	a.inventories[inv.String()] = st
	a.mu.Unlock()
	return nil
}

// Revision returns the commit last applied for the inventory, as recorded in
// the cluster, or "" when nothing was applied yet.
func (a *Applier) Revision(ctx context.Context, inv Inventory) (string, error) {
	st, err := a.loadInventory(ctx, inv)
	if err != nil {
		return "", err
	}
	return st.revision, nil
}
