package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Holding an inventory: before an apply writes anything, it marks the
// inventory ConfigMap as held by this replica until a deadline, with the
// ConfigMap's resourceVersion as a precondition. Two replicas that planned
// from the same inventory cannot both hold it: the second gets a conflict,
// re-reads, and sees the first's hold. The save that ends the apply releases
// the hold (with the same precondition) and records the window the apply
// held the inventory, so overlapping applies would show. This is what keeps a
// brief overlap of two owners (a handover, a partition) from applying one
// environment twice at once.
const (
	annotationHeldBy    = "ferry.dev/held-by"
	annotationHeldUntil = "ferry.dev/held-until"
	// maxApplyRecords bounds the windows an inventory keeps.
	maxApplyRecords = 20
)

// ApplyRecord is one apply that changed something: who held the inventory,
// when, and for which revision.
type ApplyRecord struct {
	By       string    `json:"by"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Revision string    `json:"revision"`
}

// HeldError is an inventory another replica holds for an apply of its own.
// Hold returns it marked transient (IsTransient): it is retried once the
// hold ends or its holder is gone.
type HeldError struct {
	Inventory Inventory
	By        string
	Until     time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("inventory %s: held by %s for an apply until %s; retrying after it", e.Inventory, e.By, e.Until.UTC().Format(time.RFC3339))
}

// recordsJSON is the records as writeInventory stores them.
func (st *inventoryState) recordsJSON() string {
	b, _ := json.Marshal(st.records)
	return string(b)
}

// heldBy says who holds the inventory as last read, and until when.
func (st *inventoryState) heldBy() (string, time.Time) {
	until, _ := time.Parse(time.RFC3339Nano, st.heldUntil)
	return st.holder, until
}

// hold marks the inventory held by this replica until deadline, and claims
// the items it does not hold yet (inventory.go), in one write. It refuses
// when another replica holds it (until its hold expires, or its holder is no
// longer alive as Options.HolderAlive says), and drops the cached inventory
// on a conflict so the retry plans from what is stored.
func (a *Applier) hold(ctx context.Context, inv Inventory, st *inventoryState, items []item, deadline time.Time) error {
	if err := a.heldByAnother(inv, st); err != nil {
		return err
	}
	before := *st
	if err := st.claim(items); err != nil {
		return fmt.Errorf("inventory %s: %w", inv, err)
	}
	st.holder, st.heldUntil, st.heldSince = a.identity, deadline.UTC().Format(time.RFC3339Nano), time.Now()
	if err := a.writeInventory(ctx, inv, st); err != nil {
		*st = before
		return err
	}
	return nil
}

// heldByAnother refuses, as transient, any write to an inventory another
// holder holds (as last read: a hold taken since is caught by the write's
// resourceVersion precondition). A hold is honoured until its deadline,
// unless Options.HolderAlive says its holder is gone, or the deadline is
// further ahead than any apply lasts (maxHoldAhead: a clock far ahead, or a
// hand-written annotation), which would wedge the environment.
func (a *Applier) heldByAnother(inv Inventory, st *inventoryState) error {
	by, until := st.heldBy()
	now := time.Now()
	if by == "" || by == a.identity || !now.Before(until) || until.After(now.Add(maxHoldAhead)) || !a.holderAlive(by) {
		return nil
	}
	// The hold ends with a write by its holder: the copy that shows it is
	// dropped, so the retry reads the inventory again.
	a.Forget(inv)
	return &transientError{err: &HeldError{Inventory: inv, By: by, Until: until}}
}

// maxHoldAhead bounds how far ahead a hold's deadline is believed.
const maxHoldAhead = 2 * defaultHold

// release ends this applier's hold on an apply whose save failed because its
// context ended (a SIGTERM, a fence, ferry sync interrupted), so that the
// inventory is not held until the deadline by an apply that is over. It is
// best effort, bounded by releaseTimeout, and conditional like every write:
// it keeps the objects the hold claimed.
func (a *Applier) release(ctx context.Context, inv Inventory, st *inventoryState) {
	if st.holder != a.identity || st.heldSince.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	st.holder, st.heldUntil, st.heldSince = "", "", time.Time{}
	_ = a.writeInventory(ctx, inv, st)
}

const releaseTimeout = 5 * time.Second

// recordApply appends this hold's window to the inventory's records and
// releases the hold; the caller's save writes both.
func (a *Applier) recordApply(st *inventoryState, revision string) {
	if st.holder != a.identity || st.heldSince.IsZero() {
		return
	}
	st.records = append(st.records, ApplyRecord{By: a.identity, Start: st.heldSince, End: time.Now(), Revision: revision})
	if len(st.records) > maxApplyRecords {
		st.records = slices.Clone(st.records[len(st.records)-maxApplyRecords:])
	}
	st.holder, st.heldUntil, st.heldSince = "", "", time.Time{}
}

// ApplyRecords returns the windows in which replicas held the inventory for
// an apply that changed something, oldest first.
func (a *Applier) ApplyRecords(ctx context.Context, inv Inventory) ([]ApplyRecord, error) {
	cm, err := a.core.CoreV1().ConfigMaps(inventoryNS).Get(ctx, inv.configMapName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory %s: read: %w", inv, mark(err))
	}
	var records []ApplyRecord
	if raw := cm.Data["applies"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &records); err != nil {
			return nil, fmt.Errorf("inventory %s: records: %w", inv, err)
		}
	}
	return records, nil
}

// conflicted reports a write the resourceVersion precondition refused: the
// inventory changed since it was read. The cached copy is dropped.
func (a *Applier) conflicted(inv Inventory, err error) bool {
	if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
		return false
	}
	a.Forget(inv)
	return true
}

// errChangedMeanwhile marks a conflict on the inventory as transient.
var errChangedMeanwhile = errors.New("the inventory changed since it was read (another replica, or a person); it is read again and the apply retried")
