package apply

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestTheInventoryHoldsNoUnkeyedDigestOfASecret(t *testing.T) {
	ns := cluster.Namespace(t)
	a, reqs := newApplier(t, cluster)
	inv := inventoryFor(ns)
	const value = "hunter2" // low entropy: a plain digest would give it away
	encoded := base64.StdEncoding.EncodeToString([]byte(value))
	set := "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: " + encoded + "}\n---\n" + model
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, set)})
	require.NoError(t, err)

	// What a reader of the ConfigMap could compute from a guess of the value.
	secret := objects(t, ns, set)[0]
	_, plain, err := inv.desired(secret, "r1")
	require.NoError(t, err)
	hashed, _, err := inv.desired(secret, "")
	require.NoError(t, err)
	raw, err := json.Marshal(hashed.Object)
	require.NoError(t, err)
	full := sha256.Sum256(raw)

	data := inventoryData(t, inv)
	var entries []entry
	require.NoError(t, json.Unmarshal([]byte(data), &entries))
	var stored string
	for _, e := range entries {
		if e.Kind == "Secret" {
			stored = e.Hash
		}
	}
	require.NotEmpty(t, stored, "the Secret has an entry: %s", data)
	assert.NotContains(t, data, plain, "no plain digest of the Secret")
	assert.NotContains(t, data, hex.EncodeToString(full[:]))
	assert.NotContains(t, data, value)
	assert.NotContains(t, data, encoded)

	// The key is ferry's own Secret, which a reader of ConfigMaps lacks.
	key, err := cluster.Client.CoreV1().Secrets(inventoryNS).Get(t.Context(), hashKeySecret, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Len(t, key.Data[hashKeyField], hashKeySize)

	t.Run("a resync of the unchanged Secret sends no write", func(t *testing.T) {
		reqs.reset()
		cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, set)})
		require.NoError(t, err)
		assert.Equal(t, 4, cs.Count(Unchanged), cs.Summary())
		assert.Zero(t, reqs.writes(), "%v", reqs.paths)
		assert.LessOrEqual(t, reqs.total(), 4, "one LIST per kind, the key read once per Applier: %v", reqs.paths)
	})
	t.Run("a restarted ferry reads the same key and still skips the Secret", func(t *testing.T) {
		restarted, reqs := newApplier(t, cluster)
		cs, err := restarted.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, set)})
		require.NoError(t, err)
		assert.Equal(t, 4, cs.Count(Unchanged), cs.Summary())
		assert.Zero(t, reqs.writes(), "%v", reqs.paths)
	})
	t.Run("a changed value is applied", func(t *testing.T) {
		changed := objects(t, ns, set)
		changed[0].Object["data"] = map[string]any{"password": base64.StdEncoding.EncodeToString([]byte("hunter3"))}
		cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: changed})
		require.NoError(t, err)
		assert.Equal(t, "configured", actions(cs)["Secret/"+ns+"/db"])
	})
}

func TestTwoReplicasCreatingTheKeyAtOnceShareOne(t *testing.T) {
	ns := cluster.Namespace(t)
	const replicas = 6
	keys := make([][]byte, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		a, _ := newApplier(t, cluster)
		a.keyRef = types.NamespacedName{Namespace: ns, Name: "inventory-key"}
		wg.Go(func() { keys[i], errs[i] = a.hashKey(t.Context()) })
	}
	wg.Wait()
	for i := range replicas {
		require.NoError(t, errs[i])
		assert.Equal(t, keys[0], keys[i], "replica %d", i)
	}
	stored, err := cluster.Client.CoreV1().Secrets(ns).Get(t.Context(), "inventory-key", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, stored.Data[hashKeyField], keys[0], "every replica uses the key that was stored")
}
