package apply

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAWaitCostsOneListAndOneWatchPerKindNotPerObject(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	var docs []string
	for i := range 30 {
		docs = append(docs, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-"+string(rune('a'+i/26))+string(rune('a'+i%26))+"}\n")
	}
	objs := objects(t, ns, strings.Join(docs, "---\n"))
	setup, _ := newApplier(t, cluster)
	_, err := setup.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objs})
	require.NoError(t, err)

	a, reqs := newApplier(t, cluster)
	for _, o := range objs {
		_, err := a.mapping(o.GroupVersionKind()) // discovery is not the wait's
		require.NoError(t, err)
	}
	reqs.reset()
	report, err := a.Wait(t.Context(), inv, objs, WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)
	assert.Len(t, report.Objects, 30)
	assert.LessOrEqual(t, reqs.total(), 2, "one LIST, then one WATCH if the LIST did not settle it: %v", reqs.paths)
}
