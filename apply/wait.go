package apply

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
)

// HealthReport is the readiness of every object waited for.
type HealthReport struct {
	Objects []Health
}

// Healthy reports whether every object is Current.
func (r *HealthReport) Healthy() bool {
	for _, h := range r.Objects {
		if h.Status != Current {
			return false
		}
	}
	return true
}

// WaitOptions bound and observe a Wait.
type WaitOptions struct {
	// Timeout bounds the wait.
	Timeout time.Duration
	// Progress, when set, is called every ProgressEvery (0 means 5 s) while
	// some object is not Current, with the report. The objects still in
	// progress then say why where their pods tell it: a Deployment whose
	// pods are Pending carries what the scheduler said, one whose containers
	// wait carries why (ImagePullBackOff …).
	Progress      func(*HealthReport)
	ProgressEvery time.Duration
}

// Wait watches the objects until every one is Current, one has Failed, or
// the timeout passes; it returns the report in every case, and an error
// naming each object that is not Current, with its last status message (and
// why, as for Progress), unless all are. Objects are watched (one LIST and
// WATCH per kind and namespace, restricted to the inventory's labels), never
// polled.
func (a *Applier) Wait(ctx context.Context, inv Inventory, objs []*unstructured.Unstructured, opts WaitOptions) (*HealthReport, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var tick func(*HealthReport)
	if opts.Progress != nil {
		tick = func(r *HealthReport) {
			a.explain(context.WithoutCancel(ctx), r)
			opts.Progress(r)
		}
	}
	r := a.watch(ctx, inv, objs, func(r *HealthReport) bool { return r.Healthy() || r.anyFailed() }, tick, cmp.Or(opts.ProgressEvery, 5*time.Second))
	switch {
	case r.Healthy():
		return r, nil
	case r.anyFailed():
		return r, notHealthy(r, "failed")
	default:
		// A bounded read, after the wait: why the rest is not Current.
		explainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		a.explain(explainCtx, r)
		cancel()
		return r, notHealthy(r, fmt.Sprintf("not Current after %s", opts.Timeout))
	}
}

func (r *HealthReport) anyFailed() bool {
	for _, h := range r.Objects {
		if h.Status == HealthFail {
			return true
		}
	}
	return false
}

// watch follows the readiness of objs until done says the report is final or
// ctx ends, and returns the last report; tick, when set, gets the report
// every interval meanwhile. Objects are watched (one LIST and WATCH per kind
// and namespace, restricted to the inventory's labels).
func (a *Applier) watch(ctx context.Context, inv Inventory, objs []*unstructured.Unstructured, done func(*HealthReport) bool, tick func(*HealthReport), every time.Duration) *HealthReport {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// A group is one kind in one namespace: one LIST and WATCH. The mapping
	// stays out of the key: discovery returns a new one on every call, and
	// keyed by it each object would get a LIST and WATCH of its own.
	type group struct {
		gvr       schema.GroupVersionResource
		namespace string
	}
	mappings := map[group]*meta.RESTMapping{}
	var mu sync.Mutex
	states := map[string]*Health{}
	order := make([]string, 0, len(objs))
	groups := map[group][]string{}
	for _, o := range objs {
		ref := refOf(o)
		m, err := a.mapping(ref.gvk())
		if err != nil {
			states[ref.key()] = &Health{Ref: ref, Status: NotFound, Message: err.Error()}
			order = append(order, ref.key())
			continue
		}
		ns := ref.Namespace
		if m.Scope.Name() == meta.RESTScopeNameNamespace && ns == "" {
			ns = defaultNamespace
			ref.Namespace = ns
		}
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			ns = ""
		}
		states[ref.key()] = &Health{Ref: ref, Status: NotFound, Message: "not seen yet"}
		order = append(order, ref.key())
		g := group{gvr: m.Resource, namespace: ns}
		groups[g] = append(groups[g], ref.key())
		mappings[g] = m
	}

	changed := make(chan struct{}, 1)
	update := func(key string, u *unstructured.Unstructured, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		h, ok := states[key]
		if !ok {
			return // another object of the inventory
		}
		switch {
		case deleted:
			h.Status, h.Message = NotFound, "deleted"
		case u.GetDeletionTimestamp() != nil:
			h.Status, h.Message = InProgress, "being deleted"
		default:
			h.Status, h.Message = health(u)
		}
		h.live = u
		select {
		case changed <- struct{}{}:
		default:
		}
	}

	// The LISTs and WATCHes are cancelled when watch returns, and their
	// errors are handled here (it lists again); client-go would log each
	// cancelled read as an error, so these requests carry a logger that
	// drops them.
	watchCtx := klog.NewContext(ctx, logr.Discard())
	var wg sync.WaitGroup
	for g := range groups {
		client := a.resource(mappings[g], g.namespace)
		wg.Go(func() {
			for watchCtx.Err() == nil {
				a.watchGroup(watchCtx, client, inv, g.gvr, update)
			}
		})
	}
	defer wg.Wait()
	defer cancel()

	report := func() *HealthReport {
		mu.Lock()
		defer mu.Unlock()
		r := &HealthReport{}
		for _, k := range order {
			r.Objects = append(r.Objects, *states[k])
		}
		return r
	}
	var ticks <-chan time.Time
	if tick != nil {
		t := time.NewTicker(every)
		defer t.Stop()
		ticks = t.C
	}
	for {
		r := report()
		if done(r) {
			return r
		}
		select {
		case <-changed:
		case <-ticks:
			tick(r)
		case <-ctx.Done():
			return report()
		}
	}
}

// watchGroup lists, then watches, one kind in one namespace, feeding update
// until the watch ends (the server closes watches now and then) or ctx does.
func (a *Applier) watchGroup(ctx context.Context, client interface {
	List(context.Context, metav1.ListOptions) (*unstructured.UnstructuredList, error)
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
}, inv Inventory, gvr schema.GroupVersionResource, update func(string, *unstructured.Unstructured, bool)) {
	opts := metav1.ListOptions{LabelSelector: inv.selector()}
	list, err := client.List(ctx, opts)
	if err != nil {
		sleep(ctx, time.Second)
		return
	}
	for i := range list.Items {
		u := &list.Items[i]
		update(refOf(u).key(), u, false)
	}
	opts.ResourceVersion = list.GetResourceVersion()
	w, err := client.Watch(ctx, opts)
	if err != nil {
		sleep(ctx, time.Second)
		return
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return // an error event: list again
		}
		switch ev.Type {
		case watch.Added, watch.Modified:
			update(refOf(u).key(), u, false)
		case watch.Deleted:
			update(refOf(u).key(), u, true)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// notHealthy names every object that is not Current.
func notHealthy(r *HealthReport, what string) error {
	var bad []string
	for _, h := range r.Objects {
		if h.Status != Current {
			bad = append(bad, h.String())
		}
	}
	sort.Strings(bad)
	return errors.New(what + ": " + strings.Join(bad, "; "))
}
