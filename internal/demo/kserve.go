package demo

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

var isvcResource = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}

// standInForKServe plays KServe's controller in one cluster until ctx ends:
// every InferenceService it sees is reported as KServe reports one whose
// model loaded — Ready, PredictorReady, and modelStatus UpToDate with the
// model Loaded — which is what ferry waits for. Nothing is served: kwok runs
// no containers.
func standInForKServe(ctx context.Context, cfg *rest.Config) error {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	isvcs := client.Resource(isvcResource)
	go func() {
		for ctx.Err() == nil {
			if err := followInferenceServices(ctx, isvcs); err != nil && ctx.Err() == nil {
				time.Sleep(time.Second) // the API server restarted or closed the watch: list again
			}
		}
	}()
	return nil
}

func followInferenceServices(ctx context.Context, isvcs dynamic.NamespaceableResourceInterface) error {
	list, err := isvcs.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range list.Items {
		if err := markReady(ctx, isvcs, &list.Items[i]); err != nil {
			return err
		}
	}
	w, err := isvcs.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("watch ended: %v", ev.Object)
		}
		if ev.Type == watch.Added || ev.Type == watch.Modified {
			if err := markReady(ctx, isvcs, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// markReady sets the status of an InferenceService whose latest spec has not
// been reported on yet.
func markReady(ctx context.Context, isvcs dynamic.NamespaceableResourceInterface, u *unstructured.Unstructured) error {
	if u.GetDeletionTimestamp() != nil {
		return nil
	}
	if seen, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); seen == u.GetGeneration() {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339)
	cond := func(t string) any {
		return map[string]any{"type": t, "status": "True", "lastTransitionTime": now}
	}
	u = u.DeepCopy()
	u.Object["status"] = map[string]any{
		"observedGeneration": u.GetGeneration(),
		"url":                fmt.Sprintf("http://%s.%s.example.com", u.GetName(), u.GetNamespace()),
		"conditions":         []any{cond("IngressReady"), cond("PredictorReady"), cond("Ready")},
		"modelStatus": map[string]any{
			"transitionStatus": "UpToDate",
			"states":           map[string]any{"activeModelState": "Loaded", "targetModelState": "Loaded"},
		},
	}
	_, err := isvcs.Namespace(u.GetNamespace()).UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "kserve-stand-in"})
	return err
}
