package apply

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	t.Cleanup(a.Stop)
	return a, reqs
}

// newApplierWith returns an applier for c whose requests go through wrap
// first (a fault injected between ferry and the API server).
func newApplierWith(t testing.TB, c *testenv.Cluster, wrap func(http.RoundTripper) http.RoundTripper) *Applier {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(wrap)
	a, err := New(Options{Config: cfg})
	require.NoError(t, err)
	t.Cleanup(a.Stop)
	return a
}

// failing answers requests that match with an API status of code (no
// Retry-After, so client-go does not retry) and passes the others on.
func failing(code int, match func(*http.Request) bool) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if !match(req) {
				return rt.RoundTrip(req)
			}
			status := metav1.Status{
				TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: int32(code),
				Reason:  apierrors.ReasonForError(apierrors.NewGenericServerResponse(code, req.Method, schema.GroupResource{}, "", "", 0, false)),
				Message: fmt.Sprintf("injected by the test: %d for %s %s", code, req.Method, req.URL.Path),
			}
			body, _ := json.Marshal(status)
			return &http.Response{
				StatusCode: code, Status: http.StatusText(code), Request: req,
				Header:        http.Header{"Content-Type": []string{"application/json"}},
				Body:          io.NopCloser(bytes.NewReader(body)),
				ContentLength: int64(len(body)),
			}, nil
		})
	}
}

// hidingGroup makes discovery leave group out, as discovery does when an
// aggregated API server fails or a partial list comes back: the group's
// kinds get a NoMatch while their objects still exist. It asks /apis for the
// plain APIGroupList (not the aggregated form) so that one list is filtered.
func hidingGroup(group string) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path != "/apis" {
				return rt.RoundTrip(req)
			}
			req = req.Clone(req.Context())
			req.Header.Set("Accept", "application/json")
			resp, err := rt.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				return resp, err
			}
			defer resp.Body.Close()
			var list metav1.APIGroupList
			if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
				return nil, err
			}
			list.Groups = slices.DeleteFunc(list.Groups, func(g metav1.APIGroup) bool { return g.Name == group })
			body, _ := json.Marshal(list)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Del("Content-Length")
			resp.Header.Set("Content-Type", "application/json")
			return resp, nil
		})
	}
}

// inventoryData returns the inventory's stored objects, as JSON.
func inventoryData(t testing.TB, inv Inventory) string {
	t.Helper()
	cm, err := cluster.Client.CoreV1().ConfigMaps(inventoryNS).Get(t.Context(), inv.configMapName(), metav1.GetOptions{})
	require.NoError(t, err)
	return cm.Data["objects"]
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
