package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/discovery"
)

func TestIsTransientSaysWhatRetryingFixes(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	ref := Ref{Version: "v1", Kind: "ConfigMap", Namespace: "ml", Name: "settings"}
	bad := &ObjectError{Ref: ref, Msg: "invalid"}
	flaky := &ObjectError{Ref: ref, Msg: "timeout", Transient: true}
	massDelete := &MassDeleteError{Inventory: Inventory{Repository: "r", Environment: "e"}, Deleting: 3, Of: 3}
	inventoryWrite := fmt.Errorf("inventory r/e: write ConfigMap: %w", mark(apierrors.NewServiceUnavailable("etcd leader changed")))
	for _, tc := range []struct {
		name       string
		err        error
		transient  bool
		massDelete bool
	}{
		{"no error is not transient", nil, false, false},
		{"an API server timeout is transient", apierrors.NewTimeoutError("slow", 1), true, false},
		{"a server timeout is transient", apierrors.NewServerTimeout(gr, "patch", 1), true, false},
		{"throttling is transient", apierrors.NewTooManyRequests("slow down", 1), true, false},
		{"a conflict is transient", apierrors.NewConflict(gr, "settings", errors.New("modified")), true, false},
		{"an internal error is transient", apierrors.NewInternalError(errors.New("boom")), true, false},
		{"a 503 is transient", apierrors.NewServiceUnavailable("down"), true, false},
		{"any 5xx is transient", apierrors.NewGenericServerResponse(http.StatusBadGateway, "GET", gr, "", "", 0, false), true, false},
		{"a refused connection is transient", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true, false},
		{"a failed request is transient", &url.Error{Op: "Get", URL: "https://api", Err: io.ErrUnexpectedEOF}, true, false},
		{"a connection cut mid-response is transient", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, false},
		{"a deadline is transient", fmt.Errorf("inventory r/e: read: %w", context.DeadlineExceeded), true, false},
		{"a cancellation is transient", context.Canceled, true, false},
		{"a partial discovery failure is transient", &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{{Group: "x", Version: "v1"}: errors.New("503")}}, true, false},
		{"an invalid object is bad input", apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "Bad_Name", field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), "Bad_Name", "lower case")}), false, false},
		{"a forbidden object is bad input", apierrors.NewForbidden(gr, "settings", errors.New("RBAC")), false, false},
		{"a bad request is bad input", apierrors.NewBadRequest("no"), false, false},
		{"a missing namespace is bad input", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "ml"), false, false},
		{"a kind the cluster does not serve is bad input", &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "x", Kind: "Y"}}, false, false},
		{"an object refused as bad input stays bad input", bad, false, false},
		{"an object that timed out is transient", flaky, true, false},
		{"the mass-delete guard waits for a person, not a retry", massDelete, false, true},
		{"one bad object plus a transient inventory write is transient", errors.Join(bad, inventoryWrite), true, false},
		{"one bad object plus one that timed out is transient", errors.Join(nil, bad, flaky), true, false},
		{"bad objects and a mass delete are not transient", errors.Join(massDelete, bad, bad), false, true},
		{"a mass delete plus a transient failure is both", errors.Join(massDelete, inventoryWrite), true, true},
		{"a join wrapped again is still searched", fmt.Errorf("apply: %w", errors.Join(bad, fmt.Errorf("x: %w", flaky))), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.transient, IsTransient(tc.err), "IsTransient(%v)", tc.err)
			assert.Equal(t, tc.massDelete, IsMassDelete(tc.err), "IsMassDelete(%v)", tc.err)
		})
	}
}

func TestMarkingKeepsTheMessageAndTheCause(t *testing.T) {
	cause := apierrors.NewTooManyRequests("slow down", 1)
	marked := fmt.Errorf("inventory r/e: list configmaps: %w", mark(cause))
	assert.Equal(t, "inventory r/e: list configmaps: slow down", marked.Error())
	assert.True(t, apierrors.IsTooManyRequests(marked), "the API error is still there for errors.As")
	invalid := apierrors.NewBadRequest("no")
	assert.Same(t, error(invalid), mark(invalid), "bad input is left as it is")
}

// patchOf matches server-side applies (PATCH) of objects in namespace ns.
func patchOf(ns string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/namespaces/"+ns+"/")
	}
}

func TestFailuresFromARealAPIServerAreClassified(t *testing.T) {
	ns := cluster.Namespace(t)
	inv := inventoryFor(ns)
	a, _ := newApplier(t, cluster)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	badObject := objects(t, ns, model+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n")

	t.Run("an object the API server refuses is bad input", func(t *testing.T) {
		_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: badObject})
		require.Error(t, err)
		assert.False(t, IsTransient(err), "%v", err)
		assert.False(t, IsMassDelete(err))
		oe, ok := errors.AsType[*ObjectError](err)
		require.True(t, ok)
		assert.Equal(t, "Bad_Name", oe.Ref.Name)
	})
	t.Run("an immutable field is bad input", func(t *testing.T) {
		newSelector := strings.NewReplacer("matchLabels: {app: fraud}", "matchLabels: {app: other}", "labels: {app: fraud}", "labels: {app: other}").Replace(model)
		_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, newSelector)})
		require.ErrorContains(t, err, "immutable")
		assert.False(t, IsTransient(err), "%v", err)
	})
	t.Run("the mass-delete guard is its own class", func(t *testing.T) {
		_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: nil})
		require.Error(t, err)
		assert.True(t, IsMassDelete(err), "%v", err)
		assert.False(t, IsTransient(err), "%v", err)
	})
	t.Run("a bad object plus a failing inventory write is retried as a whole", func(t *testing.T) {
		var inventoryWrites atomic.Int32
		b := newApplierWith(t, cluster, failing(http.StatusServiceUnavailable, func(r *http.Request) bool {
			// The first write holds the inventory; the second, which saves it, fails.
			return r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/namespaces/ferry-system/configmaps/") && inventoryWrites.Add(1) > 1
		}))
		_, err := b.Apply(t.Context(), Request{Inventory: inv, Revision: "r3", Objects: badObject})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "ConfigMap/"+ns+"/Bad_Name: apply")
		assert.Contains(t, err.Error(), "inventory "+inv.String()+": write ConfigMap")
		assert.True(t, IsTransient(err), "%v", err)
	})
	t.Run("a throttled apply is transient", func(t *testing.T) {
		b := newApplierWith(t, cluster, failing(http.StatusTooManyRequests, patchOf(ns)))
		changed := objects(t, ns, strings.Replace(model, `threshold: "0.7"`, `threshold: "0.8"`, 1))
		_, err := b.Apply(t.Context(), Request{Inventory: inv, Revision: "r4", Objects: changed})
		require.Error(t, err)
		oe, ok := errors.AsType[*ObjectError](err)
		require.True(t, ok, "%v", err)
		assert.True(t, oe.Transient)
		assert.True(t, IsTransient(err), "%v", err)
	})
	t.Run("an inventory the API server cannot read is transient", func(t *testing.T) {
		b := newApplierWith(t, cluster, failing(http.StatusInternalServerError, func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/namespaces/ferry-system/configmaps/")
		}))
		_, err := b.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
		require.ErrorContains(t, err, "inventory "+inv.String()+": read ConfigMap")
		assert.True(t, IsTransient(err), "%v", err)
	})
	t.Run("a LIST the API server cannot answer is transient", func(t *testing.T) {
		b := newApplierWith(t, cluster, failing(http.StatusServiceUnavailable, func(r *http.Request) bool {
			return r.Method == http.MethodGet && r.URL.Query().Has("labelSelector")
		}))
		_, err := b.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
		require.ErrorContains(t, err, "inventory "+inv.String()+": list")
		assert.True(t, IsTransient(err), "%v", err)
	})
	t.Run("a cancelled apply is transient", func(t *testing.T) {
		b, _ := newApplier(t, cluster)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := b.Apply(ctx, Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
		require.Error(t, err)
		assert.True(t, IsTransient(err), "%v", err)
	})
}
