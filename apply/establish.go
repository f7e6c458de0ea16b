package apply

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
)

// waitEstablished waits for every CRD applied in this set to be Established,
// so that its custom resources can be applied, and refreshes discovery.
func (a *Applier) waitEstablished(ctx context.Context, items []item, changes []Change) error {
	var mu sync.Mutex
	var errs []error
	applied := false
	g := new(errgroup.Group)
	for i, it := range items {
		if !it.ref.isCRD() || changes[i].Action == Failed {
			continue
		}
		applied = applied || changes[i].Action != Unchanged
		g.Go(func() error {
			m, err := a.mapping(it.ref.gvk())
			if err != nil {
				return nil
			}
			err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				crd, err := a.dynamic.Resource(m.Resource).Get(ctx, it.ref.Name, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				return conditionTrue(crd, "Established"), nil
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: not Established after 30s: %w", it.ref, &transientError{err: err}))
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	if applied {
		a.mapper.Reset()
	}
	return errors.Join(errs...)
}

func conditionTrue(u *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == condType && cm["status"] == "True" {
			return true
		}
	}
	return false
}
