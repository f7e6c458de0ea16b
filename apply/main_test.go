package apply

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// cluster is shared by the package's tests; each test works in its own
// namespace and inventory.
var cluster *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.RunWithCluster(m, &cluster)) }

// requests counts the requests an Applier sends, by method.
type requests struct {
	mu    sync.Mutex
	count map[string]int
	paths []string
}

func (r *requests) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		r.mu.Lock()
		r.count[req.Method]++
		r.paths = append(r.paths, req.Method+" "+req.URL.Path+"?"+req.URL.RawQuery)
		r.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (r *requests) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count = map[string]int{}
	r.paths = nil
}

func (r *requests) writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count["POST"] + r.count["PUT"] + r.count["PATCH"] + r.count["DELETE"]
}

func (r *requests) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.count {
		n += c
	}
	return n
}

// newApplier returns an applier for the shared cluster and its request counter.
func newApplier(t testing.TB, c *testenv.Cluster) (*Applier, *requests) {
	t.Helper()
	reqs := &requests{count: map[string]int{}}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(reqs.wrap)
	a, err := New(Options{Config: cfg})
	require.NoError(t, err)
	return a, reqs
}

// objects parses a YAML stream, putting each object in namespace ns.
func objects(t testing.TB, ns, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(stream, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &u.Object))
		if u.GetNamespace() == "" && u.GetKind() != "Namespace" && u.GetKind() != "CustomResourceDefinition" {
			u.SetNamespace(ns)
		}
		out = append(out, u)
	}
	return out
}

func inventoryFor(ns string) Inventory { return Inventory{Repository: "ml-models", Environment: ns} }
