package apply

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
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

	// exists and resourceVersion are the ConfigMap's as last read or
	// written: every write is conditional on them (hold.go).
	exists          bool
	resourceVersion string
	// holder holds the inventory for an apply until heldUntil (RFC 3339);
	// heldSince is when this replica took its hold.
	holder, heldUntil string
	heldSince         time.Time
	// records are the last windows in which applies held the inventory.
	records []ApplyRecord
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

// loadInventory returns the inventory, from memory when this applier read or
// wrote it before, else from its ConfigMap (one GET), else empty. What it
// returns is the caller's own copy: an apply changes it as it goes (its
// hold, its records) while a Diff of the same inventory may be reading the
// cached one; the cache is replaced by a read or by a write that succeeded.
// The entries map is shared: it is never changed in place, only replaced.
func (a *Applier) loadInventory(ctx context.Context, inv Inventory) (*inventoryState, error) {
	a.mu.Lock()
	cached, ok := a.inventories[inv.configMapName()]
	a.mu.Unlock()
	if ok {
		st := *cached
		st.records = slices.Clone(cached.records)
		return &st, nil
	}
	st := &inventoryState{entries: map[string]entry{}}
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
	if raw := cm.Data["applies"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &st.records); err != nil {
			return nil, fmt.Errorf("inventory %s: ConfigMap %s/%s: the apply records are corrupt: %w; delete its key applies", inv, inventoryNS, cm.Name, err)
		}
	}
	st.written = []byte(cm.Data["objects"])
	st.revision = cm.Annotations[AnnotationRev]
	st.allowMassDelete = cm.Annotations[allowMassDeleteAn]
	st.exists, st.resourceVersion = true, cm.ResourceVersion
	st.holder, st.heldUntil = cm.Annotations[annotationHeldBy], cm.Annotations[annotationHeldUntil]
	a.cacheInventory(inv, st)
	return st, nil
}

// cacheInventory keeps a copy of st as the inventory last read or written,
// unless a newer version of it was seen. Every write is conditional on the
// copy's resourceVersion (a conflict drops it), a newer version written by
// anyone drops it (inventorywatch.go), and the mass-delete confirmation is
// read fresh (guard). So a restarted ferry reads each inventory once, not
// once per resync, and an idle resync still prunes what another replica
// added meanwhile.
func (a *Applier) cacheInventory(inv Inventory, st *inventoryState) {
	a.watchInventories()
	name := inv.configMapName()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	a.sawVersion(name, st.resourceVersion)
	if !a.current(name, st.resourceVersion) {
		delete(a.inventories, name)
		return
	}
	cached := *st
	cached.records = slices.Clone(st.records)
	a.inventories[name] = &cached
}

// saveInventory writes the entries when they differ from what is stored (or
// a hold is to be released), conditional on the resourceVersion it read.
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
	held := st.holder == a.identity && !st.heldSince.IsZero()
	if bytes.Equal(data, st.written) && revision == st.revision && !held {
		st.entries = entries
		return nil
	}
	next := *st // st keeps its hold should the write fail (release, hold.go)
	next.records = slices.Clone(st.records)
	a.recordApply(&next, revision)
	next.entries, next.written, next.revision = entries, data, revision
	if err := a.writeInventory(ctx, inv, &next); err != nil {
		return err
	}
	*st = next
	return nil
}

// writeInventory writes st to the ConfigMap: created when it did not exist
// (so that two replicas creating it at once conflict), else applied with
// st's resourceVersion as a precondition. On success st carries the new
// resourceVersion and is the cached inventory; on a conflict the cache is
// dropped and the error is transient.
func (a *Applier) writeInventory(ctx context.Context, inv Inventory, st *inventoryState) error {
	if err := a.heldByAnother(inv, st); err != nil {
		return err
	}
	records, err := json.Marshal(st.records)
	if err != nil {
		return fmt.Errorf("inventory %s: %w", inv, err)
	}
	objects := string(st.written)
	if objects == "" {
		objects = "[]"
	}
	labels := map[string]string{LabelManagedBy: ManagedByFerry}
	annotations := map[string]string{
		LabelRepository: inv.Repository, LabelEnvironment: inv.Environment, AnnotationRev: st.revision,
		annotationHeldBy: st.holder, annotationHeldUntil: st.heldUntil,
	}
	data := map[string]string{"objects": objects, "applies": string(records)}
	cms := a.core.CoreV1().ConfigMaps(inventoryNS)
	var rv string
	if !st.exists {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: inv.configMapName(), Namespace: inventoryNS, Labels: labels, Annotations: annotations},
			Data:       data,
		}
		created, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsNotFound(err) {
			if err := a.ensureInventoryNamespace(ctx, inv); err != nil {
				return err
			}
			created, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
		}
		if err != nil {
			return a.inventoryWriteError(inv, err)
		}
		rv = created.ResourceVersion
	} else {
		cm := corev1ac.ConfigMap(inv.configMapName(), inventoryNS).
			WithResourceVersion(st.resourceVersion).
			WithLabels(labels).WithAnnotations(annotations).WithData(data)
		applied, err := cms.Apply(ctx, cm, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err != nil {
			return a.inventoryWriteError(inv, err)
		}
		rv = applied.ResourceVersion
	}
	st.exists, st.resourceVersion = true, rv
	a.cacheInventory(inv, st) // a copy: the caller goes on changing st (a hold's apply, then its save)
	return nil
}

func (a *Applier) ensureInventoryNamespace(ctx context.Context, inv Inventory) error {
	ns := corev1ac.Namespace(inventoryNS).WithLabels(map[string]string{LabelManagedBy: ManagedByFerry})
	if _, err := a.core.CoreV1().Namespaces().Apply(ctx, ns, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("inventory %s: create namespace %s: %w", inv, inventoryNS, mark(err))
	}
	return nil
}

func (a *Applier) inventoryWriteError(inv Inventory, err error) error {
	if a.conflicted(inv, err) {
		return fmt.Errorf("inventory %s: write ConfigMap %s/%s: %w", inv, inventoryNS, inv.configMapName(), &transientError{err: fmt.Errorf("%w: %w", errChangedMeanwhile, err)})
	}
	return fmt.Errorf("inventory %s: write ConfigMap %s/%s: %w", inv, inventoryNS, inv.configMapName(), mark(err))
}

// claim adds to st every item it does not hold yet, before the item is
// applied; the hold that precedes the apply writes it (hold.go). Without it, a
// process killed between creating an object and saving the inventory leaves
// an object labelled as ferry's that no inventory holds, and a revert pushed
// meanwhile would never prune it. A claimed entry has no hash, so the apply
// that follows always sends it; the inventory's revision is left as it is.
func (st *inventoryState) claim(items []item) error {
	var claimed map[string]entry
	for _, it := range items {
		if _, ok := st.entries[it.ref.key()]; ok {
			continue
		}
		if claimed == nil {
			claimed = maps.Clone(st.entries)
		}
		claimed[it.ref.key()] = entry{Ref: it.ref}
	}
	if claimed == nil {
		return nil
	}
	list := slices.SortedFunc(maps.Values(claimed), func(x, y entry) int { return strings.Compare(x.key(), y.key()) })
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	st.entries, st.written = claimed, data
	return nil
}

// Revision returns the commit last applied for the inventory, as recorded on
// its ConfigMap when this applier last read or wrote it (one GET the first
// time), or "" when nothing was applied yet.
func (a *Applier) Revision(ctx context.Context, inv Inventory) (string, error) {
	st, err := a.loadInventory(ctx, inv)
	if err != nil {
		return "", err
	}
	return st.revision, nil
}

// Forget drops the cached inventory: the next apply reads it from the
// cluster. For a caller that stops or starts owning the environment (a
// replica that lost or won its repository), so it never plans from what
// another replica may have changed since.
func (a *Applier) Forget(inv Inventory) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.inventories, inv.configMapName())
}
