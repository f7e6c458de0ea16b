package apply

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// benchObjects returns n objects for ns: half ConfigMaps, half Deployments
// (replicas 0, so the measure is the API server's, not the scheduler's).
func benchObjects(b *testing.B, ns string, n int) []*unstructured.Unstructured {
	var docs []string
	for i := range n / 2 {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%04d}\ndata: {model: fraud, index: \"%d\"}\n", i, i))
		docs = append(docs, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: dep-%04d}
spec:
  replicas: 0
  selector: {matchLabels: {app: dep-%04d}}
  template:
    metadata: {labels: {app: dep-%04d}}
    spec: {containers: [{name: server, image: "registry.example/mlserver:1.6"}]}
`, i, i, i))
	}
	return objects(b, ns, strings.Join(docs, "---\n"))
}

// benchNamespace returns a fresh namespace, deleted when the benchmark ends;
// testenv names it from a process-wide counter, so two never collide.
func benchNamespace(b *testing.B) string {
	b.Helper()
	return cluster.Namespace(b)
}

// BenchmarkColdApply applies 1,000 objects to an empty namespace with ferry and
// with a bare client doing concurrent server-side apply of the same objects, at
// the same concurrency and client rate limits. Each round runs both, in
// alternating order, so neither gets a fresher etcd; it reports both rates and
// ferry's share of the bare client's. Run: go test ./apply -run '^$' -bench ColdApply -benchtime 4x
func BenchmarkColdApply(b *testing.B) {
	const n, concurrency = 1000, 16
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	mapper, err := New(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}

	bare := func(ns string, objs []*unstructured.Unstructured) {
		g := new(errgroup.Group)
		g.SetLimit(concurrency)
		for _, o := range objs {
			g.Go(func() error {
				m, err := mapper.mapping(o.GroupVersionKind())
				if err != nil {
					return err
				}
				_, err = dyn.Resource(m.Resource).Namespace(ns).Apply(b.Context(), o.GetName(), o, metav1.ApplyOptions{FieldManager: "bare", Force: true})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	ferry := func(ns string, objs []*unstructured.Unstructured) {
		a, err := New(Options{Config: cfg, QPS: cfg.QPS, Burst: cfg.Burst, Concurrency: concurrency})
		if err != nil {
			b.Fatal(err)
		}
		cs, err := a.Apply(b.Context(), Request{Inventory: inventoryFor(ns), Revision: "r1", Objects: objs})
		if err != nil {
			b.Fatal(err)
		}
		if cs.Count(Created) != n {
			b.Fatalf("created %d of %d", cs.Count(Created), n)
		}
	}
	timed := func(run func(string, []*unstructured.Unstructured)) time.Duration {
		ns := benchNamespace(b)
		objs := benchObjects(b, ns, n)
		start := time.Now()
		run(ns, objs)
		return time.Since(start)
	}

	var bareTime, ferryTime time.Duration
	round := 0
	for b.Loop() {
		if round%2 == 0 {
			bareTime += timed(bare)
			ferryTime += timed(ferry)
		} else {
			ferryTime += timed(ferry)
			bareTime += timed(bare)
		}
		round++
	}
	bareRate := float64(n*round) / bareTime.Seconds()
	ferryRate := float64(n*round) / ferryTime.Seconds()
	b.ReportMetric(bareRate, "bare-objects/s")
	b.ReportMetric(ferryRate, "ferry-objects/s")
	b.ReportMetric(100*ferryRate/bareRate, "ferry-%-of-bare")
}

// BenchmarkIdleResync re-applies an unchanged 1,000-object environment and
// reports the API requests one resync costs, against the budget of one per
// kind (two kinds here). Run: go test ./apply -run '^$' -bench IdleResync
func BenchmarkIdleResync(b *testing.B) {
	ns := benchNamespace(b)
	objs := benchObjects(b, ns, 1000)
	a, reqs := newApplier(b, cluster)
	inv := inventoryFor(ns)
	// A policy, as the engine always passes one: checking it costs no request.
	req := Request{Inventory: inv, Revision: "r1", Objects: objs, Policy: &Policy{Namespaces: []string{ns}}}
	if _, err := a.Apply(b.Context(), req); err != nil {
		b.Fatal(err)
	}
	reqs.reset()
	for b.Loop() {
		cs, err := a.Apply(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		if cs.Count(Unchanged) != len(objs) {
			b.Fatalf("%d of %d unchanged", cs.Count(Unchanged), len(objs))
		}
	}
	b.ReportMetric(float64(reqs.total())/float64(b.N), "requests/resync")
	b.ReportMetric(float64(reqs.writes())/float64(b.N), "writes/resync")
	b.ReportMetric(2, "kinds")
}
