package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// verificationManager is the field manager of the verification record, so
// that writing it and writing the inventory never take fields from each other.
const verificationManager = "ferry-verification"

// Verification is what the steps after health found for one revision of an
// environment: its tests, its required checks, and whether it was promoted.
// The engine keeps it on the environment's inventory, so that a restarted
// ferry, a second replica or `ferry promote` knows whether a revision passed.
type Verification struct {
	Revision string `json:"revision"`
	// Passed is true when every test and every required check passed.
	Passed bool `json:"passed"`
	// Promoted is true once the promotion of this revision is done.
	Promoted bool `json:"promoted,omitempty"`
	// Reason says why a revision did not pass.
	Reason string       `json:"reason,omitempty"`
	Tests  []TestResult `json:"tests,omitempty"`
	// Step is the step that stopped the revision, when Reason is set.
	Step   string         `json:"step,omitempty"`
	Checks []CheckOutcome `json:"checks,omitempty"`
	Time   time.Time      `json:"time"`
}

// CheckOutcome is a required check as the verification found it.
type CheckOutcome struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// SaveVerification records v on the inventory's ConfigMap. It is written
// after an apply, so the ConfigMap and its namespace exist.
func (a *Applier) SaveVerification(ctx context.Context, inv Inventory, v Verification) error {
	// Logs are for the moment of the failure, not for the record: keep the
	// ConfigMap small. (A copy: the caller's results keep theirs.)
	v.Tests = slices.Clone(v.Tests)
	for i := range v.Tests {
		v.Tests[i].Logs = ""
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("inventory %s: verification: %w", inv, err)
	}
	cm := corev1ac.ConfigMap(inv.configMapName(), inventoryNS).
		WithLabels(map[string]string{LabelManagedBy: ManagedByFerry}).
		WithData(map[string]string{"verification": string(data)})
	// The write moves the ConfigMap's resourceVersion. The kept inventory
	// follows it when the ConfigMap it returns still holds what the copy
	// kept before the write does (nobody else wrote meanwhile); else it is
	// dropped, and the next apply reads it again, so its conditional writes
	// never conflict with ferry itself nor pass over someone else's. The
	// copy is taken before the write: the watch may drop it on seeing this
	// very write before the write returns.
	name := inv.configMapName()
	a.mu.Lock()
	cur := a.inventories[name]
	a.mu.Unlock()
	written, err := a.core.CoreV1().ConfigMaps(inventoryNS).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: verificationManager, Force: true})
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err != nil || cur == nil:
		delete(a.inventories, name)
	case cur.resourceVersion != "" && written.Data["objects"] == string(cur.written) && written.Data["applies"] == cur.recordsJSON() &&
		written.Annotations[AnnotationRev] == cur.revision && written.Annotations[annotationHeldBy] == cur.holder:
		next := *cur
		next.resourceVersion = written.ResourceVersion
		a.sawVersion(name, next.resourceVersion)
		if !a.stopped && a.current(name, next.resourceVersion) {
			a.inventories[name] = &next
		} else {
			delete(a.inventories, name)
		}
	default:
		delete(a.inventories, name)
	}
	if err != nil {
		return fmt.Errorf("inventory %s: write verification to ConfigMap %s/%s: %w", inv, inventoryNS, inv.configMapName(), err)
	}
	return nil
}

// Verification returns the last verification recorded for the inventory, or
// nil when there is none.
func (a *Applier) Verification(ctx context.Context, inv Inventory) (*Verification, error) {
	cm, err := a.core.CoreV1().ConfigMaps(inventoryNS).Get(ctx, inv.configMapName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("inventory %s: read verification: %w", inv, err)
	}
	raw, ok := cm.Data["verification"]
	if !ok {
		return nil, nil
	}
	var v Verification
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, fmt.Errorf("inventory %s: the verification on ConfigMap %s/%s is corrupt: %w; delete its key verification to start over", inv, inventoryNS, cm.Name, err)
	}
	return &v, nil
}
