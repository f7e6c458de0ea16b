package kstatusbench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/cli-utils/pkg/kstatus/polling/aggregator"
	"sigs.k8s.io/cli-utils/pkg/kstatus/polling/collector"
	"sigs.k8s.io/cli-utils/pkg/kstatus/polling/engine"
	"sigs.k8s.io/cli-utils/pkg/kstatus/polling/event"
	"sigs.k8s.io/cli-utils/pkg/kstatus/polling/statusreaders"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/cli-utils/pkg/kstatus/watcher"
	"sigs.k8s.io/cli-utils/pkg/object"
	"sigs.k8s.io/yaml"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/testenv"
)

var cluster *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.RunWithCluster(m, &cluster)) }

// counter counts the requests sent through it.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (c *counter) reset() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = 0
	return n
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// counted returns the cluster's config with its requests counted by c, at
// apply's default client rate limits.
func counted(c *counter) *rest.Config {
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 100, 200
	cfg.Wrap(c.wrap)
	return cfg
}

// environment returns n objects for ns as an environment holds them: one
// Deployment (1 replica, made Available by kwok) and its Service per 100
// objects, at least one of each, the rest ConfigMaps.
func environment(b *testing.B, ns string, n int) []*unstructured.Unstructured {
	servers := max(1, n/100)
	var docs []string
	for i := range servers {
		docs = append(docs, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: server-%02d, namespace: %s}
spec:
  selector: {matchLabels: {app: server-%02d}}
  template:
    metadata: {labels: {app: server-%02d}}
    spec: {containers: [{name: server, image: "registry.example/mlserver:1.6"}]}
---
apiVersion: v1
kind: Service
metadata: {name: server-%02d, namespace: %s}
spec: {selector: {app: server-%02d}, ports: [{port: 8080}]}
`, i, ns, i, i, i, ns, i))
	}
	for i := range n - 2*servers {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%04d, namespace: %s}\ndata: {index: \"%d\"}\n", i, ns, i))
	}
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(strings.Join(docs, "---\n"), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			b.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// inferenceServiceReader is the StatusReader ferry would hand the library
// for KServe, with apply's rule: Current when Ready is True and the model
// transition, when reported, is UpToDate; status.observedGeneration is never
// compared with the object's generation (KServe copies it from its
// Deployment).
type inferenceServiceReader struct{ engine.StatusReader }

func newInferenceServiceReader(mapper *restmapper.DeferredDiscoveryRESTMapper) inferenceServiceReader {
	return inferenceServiceReader{statusreaders.NewGenericStatusReader(mapper, func(u *unstructured.Unstructured) (*status.Result, error) {
		switch t, _, _ := unstructured.NestedString(u.Object, "status", "modelStatus", "transitionStatus"); t {
		case "InvalidSpec", "BlockedByFailedLoad":
			return &status.Result{Status: status.FailedStatus, Message: "model " + t}, nil
		case "", "UpToDate":
		default:
			return &status.Result{Status: status.InProgressStatus, Message: "model transition " + t}, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
				return &status.Result{Status: status.CurrentStatus, Message: "Ready"}, nil
			}
		}
		return &status.Result{Status: status.InProgressStatus, Message: "Ready is not True"}, nil
	})}
}

func (inferenceServiceReader) Supports(gk schema.GroupKind) bool {
	return gk == schema.GroupKind{Group: "serving.kserve.io", Kind: "InferenceService"}
}

// kstatusWait waits with cli-utils' watcher until every object is Current,
// as apply.Wait would if it were built on the library: the default watcher
// (one informer per kind and namespace, restricted to the inventory's
// labels) with the default status readers plus the InferenceService one.
func kstatusWait(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, inv apply.Inventory, objs []*unstructured.Unstructured, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	selector, err := labels.Parse(fmt.Sprintf("%s=%s,%s=%s,%s=%s", apply.LabelManagedBy, apply.ManagedByFerry, apply.LabelRepository, inv.Repository, apply.LabelEnvironment, inv.Environment))
	if err != nil {
		return err
	}
	w := watcher.NewDefaultStatusWatcher(dyn, mapper)
	w.StatusReader = statusreaders.NewStatusReader(mapper, newInferenceServiceReader(mapper))
	w.Filters = &watcher.Filters{Labels: selector}
	ids := object.UnstructuredSetToObjMetadataSet(objs)
	current := false
	done := collector.NewResourceStatusCollector(ids).ListenWithObserver(
		w.Watch(ctx, ids, watcher.Options{RESTScopeStrategy: watcher.RESTScopeNamespace}),
		collector.ObserverFunc(func(c *collector.ResourceStatusCollector, _ event.Event) {
			statuses := make([]*event.ResourceStatus, 0, len(c.ResourceStatuses))
			for _, s := range c.ResourceStatuses {
				statuses = append(statuses, s)
			}
			if aggregator.AggregateStatus(statuses, status.CurrentStatus) == status.CurrentStatus {
				current = true
				cancel()
			}
		}))
	<-done
	if !current {
		return fmt.Errorf("not Current after %s", timeout)
	}
	return nil
}

// BenchmarkWaitForCurrent measures, for environments of 20 and 1,000 objects
// (environment), the requests and the time from the end of an apply until
// every object is Current, two ways: apply.Wait, and cli-utils' kstatus
// watcher as kstatusWait uses it. It reports the median and the longest
// wait of each, and their mean requests. Each round applies a fresh
// namespace for each way, in alternating order; each way gets clients of its
// own with discovery already warm, so only the wait's requests count.
func BenchmarkWaitForCurrent(b *testing.B) {
	for _, n := range []int{20, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			setup, err := apply.New(apply.Options{Config: cluster.Config})
			if err != nil {
				b.Fatal(err)
			}
			// Each way is set up (clients, discovery warmed) and returns
			// the wait, which alone is timed and counted.
			ways := map[string]func(*counter, apply.Inventory, []*unstructured.Unstructured) (func() error, error){
				"ferry": func(c *counter, inv apply.Inventory, objs []*unstructured.Unstructured) (func() error, error) {
					a, err := apply.New(apply.Options{Config: counted(c)})
					if err != nil {
						return nil, err
					}
					// A Diff resolves every kind, as the apply before a Wait does.
					if _, err := a.Diff(b.Context(), apply.Request{Inventory: inv, Revision: "r1", Objects: objs}); err != nil {
						return nil, err
					}
					return func() error {
						_, err := a.Wait(b.Context(), inv, objs, apply.WaitOptions{Timeout: 2 * time.Minute})
						return err
					}, nil
				},
				"kstatus": func(c *counter, inv apply.Inventory, objs []*unstructured.Unstructured) (func() error, error) {
					cfg := counted(c)
					dyn, err := dynamic.NewForConfig(cfg)
					if err != nil {
						return nil, err
					}
					disc, err := discovery.NewDiscoveryClientForConfig(cfg)
					if err != nil {
						return nil, err
					}
					mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
					for _, o := range objs {
						if _, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version); err != nil {
							return nil, err
						}
					}
					return func() error { return kstatusWait(b.Context(), dyn, mapper, inv, objs, 2*time.Minute) }, nil
				},
			}
			elapsed := map[string][]time.Duration{}
			requests := map[string]int{}
			round := 0
			for b.Loop() {
				order := []string{"ferry", "kstatus"}
				if round%2 == 1 {
					order = []string{"kstatus", "ferry"}
				}
				round++
				for _, way := range order {
					ns := cluster.Namespace(b)
					inv := apply.Inventory{Repository: "kstatusbench", Environment: ns}
					objs := environment(b, ns, n)
					if _, err := setup.Apply(b.Context(), apply.Request{Inventory: inv, Revision: "r1", Objects: objs}); err != nil {
						b.Fatal(err)
					}
					c := &counter{}
					wait, err := ways[way](c, inv, objs)
					if err != nil {
						b.Fatalf("%s: %v", way, err)
					}
					c.reset()
					start := time.Now()
					if err := wait(); err != nil {
						b.Fatalf("%s: %v", way, err)
					}
					elapsed[way] = append(elapsed[way], time.Since(start))
					requests[way] += c.reset()
				}
			}
			for way := range ways {
				slices.Sort(elapsed[way])
				b.ReportMetric(float64(elapsed[way][len(elapsed[way])/2].Microseconds())/1000, way+"-p50-ms")
				b.ReportMetric(float64(elapsed[way][len(elapsed[way])-1].Microseconds())/1000, way+"-max-ms")
				b.ReportMetric(float64(requests[way])/float64(round), way+"-requests")
			}
		})
	}
}
