package apply

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
)

// immutableFields returns the fields an Invalid error says cannot change.
func immutableFields(err error) []string {
	if err == nil || !apierrors.IsInvalid(err) {
		return nil
	}
	var fields []string
	if status, ok := err.(apierrors.APIStatus); ok && status.Status().Details != nil {
		for _, c := range status.Status().Details.Causes {
			if strings.Contains(c.Message, "immutable") {
				fields = append(fields, c.Field)
			}
		}
	}
	if len(fields) == 0 && strings.Contains(err.Error(), "immutable") {
		fields = append(fields, "a field")
	}
	return fields
}

// recreate deletes an object (background propagation), waits until it is
// gone, and applies it again.
func (a *Applier) recreate(ctx context.Context, m *meta.RESTMapping, it item) (*unstructured.Unstructured, error) {
	client := a.resource(m, it.ref.Namespace)
	policy := metav1.DeletePropagationBackground
	if err := client.Delete(ctx, it.ref.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("delete to recreate: %w", err)
	}
	if err := waitGone(ctx, func(ctx context.Context) error {
		_, err := client.Get(ctx, it.ref.Name, metav1.GetOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	return client.Apply(ctx, it.ref.Name, it.obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
}

// waitGone polls get until it reports NotFound, for at most a minute.
func waitGone(ctx context.Context, get func(context.Context) error) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := get(ctx)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("still present a minute after deletion (a finalizer may hold it): %w", err)
	}
	return nil
}
