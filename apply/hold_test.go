package apply

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// replica is an Applier with an identity of its own, whose first object
// write can be held back by the test (gate), to catch it in mid-apply.
func replica(t *testing.T, identity string, alive func(string) bool, gate <-chan struct{}) *Applier {
	t.Helper()
	cfg := rest.CopyConfig(cluster.Config)
	var once sync.Once
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if gate != nil && r.Method == http.MethodPatch && !strings.Contains(r.URL.Path, "/ferry-system/") {
				once.Do(func() {
					select {
					case <-gate:
					case <-r.Context().Done():
					}
				})
			}
			return rt.RoundTrip(r)
		})
	})
	a, err := New(Options{Config: cfg, Identity: identity, HolderAlive: alive})
	require.NoError(t, err)
	t.Cleanup(a.Stop)
	return a
}

// blindReplica is a replica whose watch of the inventories never sees
// anything: it keeps its copies until a write of its own is refused, as it
// would while its watch is down.
func blindReplica(t *testing.T, identity string) *Applier {
	t.Helper()
	cfg := rest.CopyConfig(cluster.Config)
	cfg.Wrap(failing(http.StatusServiceUnavailable, func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/namespaces/"+inventoryNS+"/configmaps")
	}))
	a, err := New(Options{Config: cfg, Identity: identity})
	require.NoError(t, err)
	t.Cleanup(a.Stop)
	return a
}

func TestTwoReplicasNeverApplyOneEnvironmentAtOnce(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	_, err := replica(t, "a", nil, nil).Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	gate := make(chan struct{})
	a := replica(t, "a", nil, gate)
	done := make(chan error, 1)
	changed := objects(t, ns, strings.Replace(model, "mlserver:1.6", "mlserver:1.7", 1))
	go func() {
		_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: changed})
		done <- err
	}()
	// a holds the inventory and waits at its first object write; b arrives.
	require.Eventually(t, func() bool {
		cm, err := cluster.Client.CoreV1().ConfigMaps(inventoryNS).Get(t.Context(), inv.configMapName(), metav1.GetOptions{})
		return err == nil && cm.Annotations[annotationHeldBy] == "a"
	}, 10*time.Second, 20*time.Millisecond, "a holds the inventory")
	b := replica(t, "b", nil, nil)
	var err2 error
	require.Eventually(t, func() bool {
		_, err2 = b.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: objects(t, ns, model)})
		return err2 != nil && strings.Contains(err2.Error(), "held by a")
	}, 10*time.Second, 20*time.Millisecond, "b is refused while a holds the inventory")
	assert.True(t, IsTransient(err2), "retried once the hold ends: %v", err2)

	close(gate)
	require.NoError(t, <-done)
	_, err = b.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: objects(t, ns, model)})
	require.NoError(t, err, "the hold ended with a's apply")

	records, err := b.ApplyRecords(t.Context(), inv)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(records), 3)
	last := records[len(records)-2:]
	assert.Equal(t, []string{"a", "b"}, []string{last[0].By, last[1].By})
	assert.Equal(t, []string{"r2", "r3"}, []string{last[0].Revision, last[1].Revision})
	for i := 1; i < len(records); i++ {
		assert.False(t, records[i].Start.Before(records[i-1].End), "windows never overlap: %+v", records)
	}
}

func TestTheHoldOfAReplicaThatIsGoneIsIgnored(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	gate := make(chan struct{})
	defer close(gate)
	dead := replica(t, "dead", nil, gate)
	go dead.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})

	alive := func(id string) bool { return id != "dead" }
	b := replica(t, "b", alive, nil)
	require.Eventually(t, func() bool {
		cm, err := cluster.Client.CoreV1().ConfigMaps(inventoryNS).Get(t.Context(), inv.configMapName(), metav1.GetOptions{})
		return err == nil && cm.Annotations[annotationHeldBy] == "dead"
	}, 10*time.Second, 20*time.Millisecond, "the dead replica holds the inventory")
	_, err := b.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model)})
	require.NoError(t, err, "a hold whose holder is not alive does not stop b")
}

func TestAnInventoryChangedSinceItWasReadIsReadAgain(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	// a's watch is down: only the conditional write can tell it that its
	// copy is old (TestAnIdleApplyPrunesWhatAnotherReplicaAddedMeanwhile
	// is the watch's part).
	a, b := blindReplica(t, "a"), replica(t, "b", nil, nil)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	// b writes the inventory (a new revision): a's copy of it is now old.
	_, err = b.Apply(t.Context(), Request{Inventory: inv, Revision: "r1b", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	changed := objects(t, ns, strings.Replace(model, "0.7", "0.9", 1))
	_, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: changed})
	require.Error(t, err, "a planned from an old inventory: refused before any object write")
	assert.True(t, IsTransient(err))
	assert.Contains(t, err.Error(), "changed since it was read")
	settings, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), "settings", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "0.7", settings.Data["threshold"], "nothing was applied")

	_, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: changed})
	require.NoError(t, err, "the retry reads it again")
}

func TestAHoldWhoseDeadlineIsFurtherAheadThanAnyApplyIsIgnored(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	a := replica(t, "a", nil, nil)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	// A clock a day ahead, or a hand-written annotation.
	patch := `{"metadata":{"annotations":{"` + annotationHeldBy + `":"skewed","` + annotationHeldUntil + `":"` +
		time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339Nano) + `"}}}`
	_, err = cluster.Client.CoreV1().ConfigMaps(inventoryNS).Patch(t.Context(), inv.configMapName(), "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)

	b := replica(t, "b", nil, nil)
	_, err = b.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, strings.Replace(model, "0.7", "0.8", 1))})
	require.NoError(t, err, "a hold ending in a day would wedge the environment: not believed")
}

func TestAnApplyCutShortReleasesItsHold(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	_, err := replica(t, "a", nil, nil).Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)

	gate := make(chan struct{})
	defer close(gate)
	a := replica(t, "a", nil, gate)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := a.Apply(ctx, Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, strings.Replace(model, "0.7", "0.8", 1))})
		done <- err
	}()
	require.Eventually(t, func() bool {
		cm, err := cluster.Client.CoreV1().ConfigMaps(inventoryNS).Get(t.Context(), inv.configMapName(), metav1.GetOptions{})
		return err == nil && cm.Annotations[annotationHeldBy] == "a"
	}, 10*time.Second, 20*time.Millisecond, "a holds the inventory, stopped at its first write")
	cancel() // ferry sync interrupted, a SIGTERM, a fence
	require.Error(t, <-done)

	cm, err := cluster.Client.CoreV1().ConfigMaps(inventoryNS).Get(t.Context(), inv.configMapName(), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, cm.Annotations[annotationHeldBy], "released, not held until its deadline")
	b := replica(t, "b", nil, nil)
	_, err = b.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: objects(t, ns, model)})
	require.NoError(t, err, "b goes ahead at once")
}
