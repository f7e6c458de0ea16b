package apply

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Options configures an Applier for one cluster.
type Options struct {
	// Config reaches the cluster. It is copied; QPS and Burst below replace its own.
	Config *rest.Config
	// QPS and Burst, when QPS is set, bound requests to the API server with
	// a token bucket. 0 leaves the rate to the API server's priority and
	// fairness (on by default since Kubernetes 1.20), which sees every
	// client; what bounds ferry itself is the requests it has in flight
	// (Concurrency per apply, the engine's workers). A bucket of client-go's
	// 5 or even 100 per second is shared by every environment on the cluster:
	// it turned the first apply of 3,000 environments into ten minutes.
	QPS   float32
	Burst int
	// Concurrency is how many objects are applied at once; 0 means 16.
	Concurrency int
	// ServiceAccount, when set, is the account the environment's objects are
	// written as (Kubernetes RBAC then has the last word, like Flux's
	// serviceAccountName): Apply's applies and deletes, Diff's dry runs,
	// prune, Wait and the test Jobs of RunTests impersonate
	// system:serviceaccount:<namespace>:<name>. Ferry's own bookkeeping
	// stays with Config's identity, so the account needs no access to
	// ferry-system: the inventory ConfigMap, its verification and the
	// Secret-hash key, discovery, and the reads that decide (observe's one
	// metadata LIST per kind, the policy's look at other inventories'
	// objects, whether a removed CRD is gone). The zero value impersonates
	// nobody.
	ServiceAccount types.NamespacedName
	// Identity names this replica on the inventories it holds for an apply
	// (hold.go); "" means the hostname.
	Identity string
	// HolderAlive, when set, says whether the replica that holds an
	// inventory is still alive (a live member of the ring); a hold of one
	// that is not is ignored. Unset, a hold lasts until its deadline.
	HolderAlive func(identity string) bool
}

// Applier applies rendered objects to one cluster. It is safe for concurrent
// use by different inventories; the engine runs one apply at a time per
// inventory.
type Applier struct {
	// core, metadata and ownDynamic are ferry's own identity (Options.Config).
	core       kubernetes.Interface
	metadata   metadata.Interface
	ownDynamic dynamic.Interface
	// dynamic and workloads are the environment's: impersonating
	// Options.ServiceAccount when set, else ferry's own.
	dynamic     dynamic.Interface
	workloads   kubernetes.Interface
	mapper      *restmapper.DeferredDiscoveryRESTMapper
	concurrency int

	identity    string
	holderAlive func(string) bool

	mu sync.Mutex
	// inventories are the copies kept, by ConfigMap name, while the watch
	// (inventorywatch.go) finds nothing newer; none once stopped.
	inventories map[string]*inventoryState
	invWatch    inventoryWatch
	stopped     bool

	// keyRef names the Secret holding the key of Secret hashes (see
	// hashKey); tests point it elsewhere. key is that key once loaded.
	keyRef types.NamespacedName
	keyMu  sync.Mutex
	key    []byte
}

// New returns an Applier. Discovery is cached in memory and refreshed when a
// kind is unknown (a CRD applied a moment ago).
func New(opts Options) (*Applier, error) {
	if opts.Config == nil {
		return nil, errors.New("apply: Config is required")
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS == 0 {
		cfg.QPS = -1 // no client-side limiter (client-go's convention)
	} else if cfg.Burst == 0 {
		cfg.Burst = max(1, int(2*cfg.QPS))
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	envCfg := cfg
	if sa := opts.ServiceAccount; sa != (types.NamespacedName{}) {
		if sa.Namespace == "" || sa.Name == "" {
			return nil, fmt.Errorf("apply: ServiceAccount %q needs both a namespace and a name", sa)
		}
		envCfg = rest.CopyConfig(cfg)
		envCfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + sa.Namespace + ":" + sa.Name}
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	workloads, err := kubernetes.NewForConfig(envCfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	dyn, err := dynamic.NewForConfig(envCfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	ownDyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	if opts.Identity == "" {
		opts.Identity, _ = os.Hostname()
	}
	holderAlive := opts.HolderAlive
	if holderAlive == nil {
		holderAlive = func(string) bool { return true }
	}
	return &Applier{
		identity:    opts.Identity,
		holderAlive: holderAlive,
		core:        core,
		metadata:    md,
		ownDynamic:  ownDyn,
		dynamic:     dyn,
		workloads:   workloads,
		mapper:      restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		concurrency: opts.Concurrency,
		inventories: map[string]*inventoryState{},
		invWatch:    inventoryWatch{newest: map[string]string{}},
		keyRef:      types.NamespacedName{Namespace: inventoryNS, Name: hashKeySecret},
	}, nil
}

// mapping resolves a kind to its resource, refreshing discovery once when the
// kind is unknown (a CRD applied a moment ago). An empty version means the
// group's preferred one. A kind discovery does not list is a NoMatch error
// ("not served"); any other failure is a discovery error, transient.
func (a *Applier) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	switch {
	case meta.IsNoMatchError(err):
		return nil, fmt.Errorf("kind %s is not served by the cluster: %w", kindString(gvk), err)
	case err != nil:
		return nil, fmt.Errorf("discover kind %s: %w", kindString(gvk), &transientError{err: err})
	}
	return m, nil
}

// kindString names a kind for messages: Kind.group/version, the parts that
// are empty left out.
func kindString(gvk schema.GroupVersionKind) string {
	s := gvk.GroupKind().String()
	if gvk.Version != "" {
		s += "/" + gvk.Version
	}
	return s
}

// resource returns the dynamic client for one object.
func (a *Applier) resource(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dynamic.Resource(m.Resource).Namespace(namespace)
	}
	return a.dynamic.Resource(m.Resource)
}
