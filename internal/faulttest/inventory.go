package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/object"
)

// inventoryNamespace is where apply keeps inventories (DESIGN.md section 3).
const inventoryNamespace = "ferry-system"

// Inventory returns the objects the inventory of repo/env records (as
// object.Key strings, sorted) and the revision it was last applied at. It
// finds the ConfigMap by the annotations apply writes on it, not by name, so
// a change of naming does not hide it.
func Inventory(ctx context.Context, client kubernetes.Interface, repo, env string) ([]string, string, error) {
	list, err := client.CoreV1().ConfigMaps(inventoryNamespace).List(ctx, metav1.ListOptions{LabelSelector: apply.LabelManagedBy + "=" + apply.ManagedByFerry})
	if err != nil {
		return nil, "", fmt.Errorf("list inventories: %w", err)
	}
	for _, cm := range list.Items {
		if cm.Annotations[apply.LabelRepository] != repo || cm.Annotations[apply.LabelEnvironment] != env {
			continue
		}
		var entries []struct {
			Group, Kind, Namespace, Name string
		}
		if err := json.Unmarshal([]byte(cm.Data["objects"]), &entries); err != nil {
			return nil, "", fmt.Errorf("inventory %s/%s: %w", repo, env, err)
		}
		keys := make([]string, 0, len(entries))
		for _, e := range entries {
			keys = append(keys, object.Key{Group: e.Group, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}.String())
		}
		slices.Sort(keys)
		return keys, cm.Annotations[apply.AnnotationRev], nil
	}
	return nil, "", nil
}

// Labelled returns the objects of every kind the cluster serves that carry
// repo/env's inventory labels and that ferry applied, as object.Key strings,
// sorted. Left out, because ferry does not apply them: objects another
// object owns (ReplicaSets, Pods, EndpointSlices), the Endpoints that copy
// their Service's labels, and test Jobs (labelled ferry.dev/test), which are
// never part of an inventory. Objects being deleted count: they are still
// there.
func Labelled(ctx context.Context, cfg *rest.Config, repo, env string) ([]string, error) {
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := discovery.ServerPreferredResources(disc)
	if err != nil {
		return nil, fmt.Errorf("discover kinds: %w", err)
	}
	selector := fmt.Sprintf("%s=%s,%s=%s,%s=%s", apply.LabelManagedBy, apply.ManagedByFerry, apply.LabelRepository, repo, apply.LabelEnvironment, env)
	var keys []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || (gv.Group == "" && r.Kind == "Endpoints") {
				continue
			}
			objs, err := md.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", r.Name, err)
			}
			for _, o := range objs.Items {
				if len(o.OwnerReferences) > 0 || o.Labels["ferry.dev/test"] != "" {
					continue
				}
				keys = append(keys, object.Key{Group: gv.Group, Kind: r.Kind, Namespace: o.Namespace, Name: o.Name}.String())
			}
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// AssertOwnsExactlyWhatIsThere checks that the inventory of repo/env records
// exactly the cluster's objects labelled as its own: none left out of it
// (an orphan, which no prune will ever remove) and none recorded that is
// gone. It returns the inventory's objects.
func AssertOwnsExactlyWhatIsThere(t testing.TB, client kubernetes.Interface, cfg *rest.Config, repo, env string) []string {
	t.Helper()
	inv, _, err := Inventory(t.Context(), client, repo, env)
	require.NoError(t, err)
	require.NotEmpty(t, inv, "inventory %s/%s", repo, env)
	live, err := Labelled(t.Context(), cfg, repo, env)
	require.NoError(t, err)
	assert.Empty(t, missing(live, inv), "%s/%s: orphans, labelled as its own and in no inventory", repo, env)
	assert.Empty(t, missing(inv, live), "%s/%s: in the inventory, not in the cluster", repo, env)
	return inv
}

// missing returns the elements of want that are not in have.
func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}
