package apply

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// The inventories an applier keeps (inventory.go) are kept honest by a watch
// of the inventory ConfigMaps' metadata in ferry-system, one per applier
// (per cluster), started with the first inventory kept: a version newer
// than the kept copy, written by anyone (another replica, ferry sync, a
// person), drops the copy, so the next apply or diff reads the inventory
// again. An idle resync writes nothing, so without the watch it would never
// learn that its copy is stale, and would leave unpruned what another
// replica added meanwhile. The watch costs one LIST and one WATCH per
// cluster, not a request per environment per resync.
//
// Resource versions are compared as numbers, as Kubernetes allows since
// 1.35 (resourceversion.CompareResourceVersion); one that is not a number
// is only ever equal or different, and a difference drops the copy.
type inventoryWatch struct {
	start  sync.Once
	cancel context.CancelFunc
	done   chan struct{} // closed once the informer has stopped
	// newest is, by ConfigMap name, the newest resource version this
	// applier has seen: by the watch, or by its own reads and writes.
	// Guarded by Applier.mu.
	newest map[string]string
}

var configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// watchInventories starts the watch once; it runs until Stop.
func (a *Applier) watchInventories() {
	a.invWatch.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		a.invWatch.cancel = cancel
		informer := metadatainformer.NewFilteredMetadataInformer(a.metadata, configMapsGVR, inventoryNS, 0, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = LabelManagedBy + "=" + ManagedByFerry }).Informer()
		// Only the name and version matter: the store keeps nothing else.
		_ = informer.SetTransform(func(obj any) (any, error) {
			if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
				return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
					Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion,
				}}, nil
			}
			return obj, nil
		})
		_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { a.noticed(obj, false) },
			UpdateFunc: func(_, obj any) { a.noticed(obj, false) },
			DeleteFunc: func(obj any) { a.noticed(obj, true) },
		})
		a.invWatch.done = make(chan struct{})
		go func() {
			defer close(a.invWatch.done)
			informer.RunWithContext(ctx)
		}()
	})
}

// Stop ends the watch of the inventories and waits (at most 5 s) until it
// has stopped; the applier keeps no copy after it (each apply reads its
// inventory). For a command that is done with the applier, and tests.
func (a *Applier) Stop() {
	a.invWatch.start.Do(func() {}) // nothing starts after Stop
	a.mu.Lock()
	a.stopped = true
	clear(a.inventories)
	a.mu.Unlock()
	if a.invWatch.cancel == nil {
		return
	}
	a.invWatch.cancel()
	select {
	case <-a.invWatch.done:
	case <-time.After(5 * time.Second):
	}
}

// noticed records a version of an inventory ConfigMap the watch delivered
// and drops a kept copy older than it (any copy, when the ConfigMap is
// gone).
func (a *Applier) noticed(obj any, gone bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, gone = d.Obj, true
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if gone {
		delete(a.invWatch.newest, m.Name)
		delete(a.inventories, m.Name)
		return
	}
	a.sawVersion(m.Name, m.ResourceVersion)
	if kept := a.inventories[m.Name]; kept != nil && !a.current(m.Name, kept.resourceVersion) {
		delete(a.inventories, m.Name)
	}
}

// sawVersion records rv as seen for ConfigMap name when it is newer than
// what was seen (or not comparable with it). a.mu is held.
func (a *Applier) sawVersion(name, rv string) {
	seen, ok := a.invWatch.newest[name]
	if !ok || rv == seen {
		a.invWatch.newest[name] = rv
		return
	}
	if c, err := resourceversion.CompareResourceVersion(rv, seen); err != nil || c > 0 {
		a.invWatch.newest[name] = rv
	}
}

// current says whether rv is the newest version seen of ConfigMap name.
// a.mu is held.
func (a *Applier) current(name, rv string) bool {
	seen, ok := a.invWatch.newest[name]
	if !ok || rv == seen {
		return true
	}
	c, err := resourceversion.CompareResourceVersion(rv, seen)
	return err == nil && c >= 0
}
