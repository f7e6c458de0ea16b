package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a running local Kubernetes cluster: a real etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, with nodes simulated by kwok so
// that Deployments become Available and Jobs complete.
type Cluster struct {
	// Name is unique on this machine; it encodes the test process's pid.
	Name string
	// Kubeconfig is the path of a kubeconfig file that holds only this cluster.
	Kubeconfig string
	// Config reaches the cluster as its administrator.
	Config *rest.Config
	// Client is a typed client built from Config.
	Client kubernetes.Interface
	// Startup is how long StartCluster took, nodes Ready included.
	Startup time.Duration

	kwokctl string
	env     []string
	dir     string
}

// ClusterOptions tunes StartCluster. The zero value is usable.
type ClusterOptions struct {
	// Nodes is how many kwok nodes to add; 0 means 2.
	Nodes int
	// Name names the cluster; "" means a name unique to this test process,
	// which a later test process deletes once this one is gone. A named
	// cluster is left alone: it outlives its process (the demo's).
	Name string
	// Dir is kwokctl's work directory; "" means the one tests share under
	// the system's temporary directory.
	Dir string
}

// clusterSeq makes cluster names unique within one test process.
var clusterSeq atomic.Int64

// StartCluster starts a cluster from the binaries in BinDir and waits until its
// nodes are Ready. The caller must Stop it. It never touches ~/.kube/config:
// kwokctl gets its own work directory and kubeconfig file. Clusters left
// behind by test processes that died are deleted first.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	bins := map[string]string{}
	for _, name := range []string{"kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"} {
		path, err := Binary(name)
		if err != nil {
			return nil, err
		}
		bins[name] = path
	}

	base := opts.Dir
	if base == "" {
		base = filepath.Join(os.TempDir(), "ferry-testenv")
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	name := opts.Name
	if name == "" {
		name = fmt.Sprintf("ferry-%d-%d", os.Getpid(), clusterSeq.Add(1))
	}
	c := &Cluster{
		Name:    name,
		kwokctl: bins["kwokctl"],
		dir:     base,
		env: append(os.Environ(),
			"KWOK_WORKDIR="+filepath.Join(base, "kwok"),
			"KWOK_KUBECTL_BINARY="+bins["kubectl"],
		),
	}
	c.Kubeconfig = filepath.Join(base, c.Name+".kubeconfig")
	c.reapStale(ctx)

	start := time.Now()
	if err := c.create(ctx, bins); err != nil {
		c.Stop()
		return nil, err
	}
	if _, err := c.run(ctx, time.Minute, "scale", "node", "--name", c.Name, "--replicas", strconv.Itoa(opts.Nodes)); err != nil {
		c.Stop()
		return nil, err
	}

	var err error
	c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("cluster %s: load kubeconfig: %w", c.Name, err)
	}
	// The cluster's certificates never rotate. Held as data, client-go does
	// not start a watcher of their files with each new transport, whose
	// goroutines would outlive every test (and fail its leak check).
	if err := rest.LoadTLSFiles(c.Config); err != nil {
		c.Stop()
		return nil, fmt.Errorf("cluster %s: load certificates: %w", c.Name, err)
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	c.Client, err = kubernetes.NewForConfig(c.Config)
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("cluster %s: client: %w", c.Name, err)
	}
	if err := c.waitNodesReady(ctx, opts.Nodes); err != nil {
		c.Stop()
		return nil, err
	}
	c.Startup = time.Since(start)
	return c, nil
}

// create runs `kwokctl create cluster`. kwokctl picks ports that are free when
// it looks, so two creates at once could pick the same ones: a file lock shared
// by every work directory on the machine (tests and the demo) serialises
// creates across goroutines and processes (go test runs packages in parallel).
func (c *Cluster) create(ctx context.Context, bins map[string]string) error {
	lockDir := filepath.Join(os.TempDir(), "ferry-testenv")
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	lock, err := os.OpenFile(filepath.Join(lockDir, "create.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	defer lock.Close() // closing releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("cluster %s: lock: %w", c.Name, err)
	}
	config := filepath.Join(c.dir, c.Name+".kwok.yaml")
	if err := writeKwokConfig(config); err != nil {
		return err
	}
	defer os.Remove(config)
	_, err = c.run(ctx, 2*time.Minute, "create", "cluster",
		"--name", c.Name,
		"--config", config,
		"--runtime", "binary",
		"--etcd-binary", bins["etcd"],
		"--kube-apiserver-binary", bins["kube-apiserver"],
		"--kube-controller-manager-binary", bins["kube-controller-manager"],
		"--kube-scheduler-binary", bins["kube-scheduler"],
		"--kwok-controller-binary", bins["kwok"],
		"--kubeconfig", c.Kubeconfig,
		"--disable-qps-limits",
		// kube-apiserver's default Service range is a /24: 254 Services.
		"--extra-args", "kube-apiserver=service-cluster-ip-range=10.96.0.0/16",
		"--wait", "60s",
	)
	return err
}

// DeleteCluster deletes a named cluster of work directory dir, whether it is
// running or not; deleting one that does not exist is not an error.
func DeleteCluster(ctx context.Context, dir, name string) error {
	kwokctl, err := Binary("kwokctl")
	if err != nil {
		return err
	}
	kubectl, _ := Binary("kubectl")
	c := &Cluster{Name: name, kwokctl: kwokctl, dir: dir, Kubeconfig: filepath.Join(dir, name+".kubeconfig"),
		env: append(os.Environ(), "KWOK_WORKDIR="+filepath.Join(dir, "kwok"), "KWOK_KUBECTL_BINARY="+kubectl)}
	_, err = c.run(ctx, time.Minute, "delete", "cluster", "--name", name)
	os.Remove(c.Kubeconfig)
	if err != nil && strings.Contains(err.Error(), "not exist") {
		return nil
	}
	return err
}

// Stop deletes the cluster: its processes end and its files are removed.
// It is safe to call more than once.
func (c *Cluster) Stop() error {
	// Stop runs from t.Cleanup, after the test's context is gone.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.run(ctx, time.Minute, "delete", "cluster", "--name", c.Name)
	os.Remove(c.Kubeconfig)
	return err
}

// NewCluster starts a cluster for one test and deletes it when the test ends,
// failed or not. A missing binary fails the test with the command that builds it.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

// Namespace creates a namespace named after the test, unique in the cluster,
// and deletes it when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	name := namespaceName(t.Name(), nsSeq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

var nsSeq atomic.Int64

// namespaceName turns a test name into a DNS-1123 label of at most 63 characters.
func namespaceName(test string, seq int64) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	suffix := fmt.Sprintf("-%d", seq)
	name := strings.Trim(b.String(), "-")
	if max := 63 - len(suffix); len(name) > max {
		name = strings.TrimRight(name[:max], "-")
	}
	return name + suffix
}

// waitNodesReady polls until n nodes report Ready, for at most a minute.
func (c *Cluster) waitNodesReady(ctx context.Context, n int) error {
	var ready int
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil // the apiserver may still be settling
		}
		ready = 0
		for _, node := range nodes.Items {
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= n, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s: %d of %d nodes Ready: %w", c.Name, ready, n, err)
	}
	return nil
}

// run runs kwokctl with a bounded time and returns its combined output; a
// failure carries the output's tail so the cause is visible in the test log.
func (c *Cluster) run(ctx context.Context, timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kwokctl, args...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("kwokctl %s: %w\n%s", strings.Join(args[:2], " "), err, tail(out.Bytes(), 4096))
	}
	return out.Bytes(), nil
}

// reapStale deletes clusters whose test process is gone (killed by a -timeout
// panic, say), so stray control planes never pile up.
func (c *Cluster) reapStale(ctx context.Context) {
	entries, err := os.ReadDir(filepath.Join(c.dir, "kwok", "clusters"))
	if err != nil {
		return
	}
	for _, e := range entries {
		var pid, seq int
		if _, err := fmt.Sscanf(e.Name(), "ferry-%d-%d", &pid, &seq); err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		_, _ = c.run(ctx, time.Minute, "delete", "cluster", "--name", e.Name())
		os.Remove(filepath.Join(c.dir, e.Name()+".kubeconfig"))
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// RunWithCluster is a TestMain body for packages whose tests share one
// cluster: it starts the cluster, stores it in *c, runs the tests, stops the
// cluster, and returns the exit code. A cluster that cannot start fails the
// run with the reason (e.g. the command that builds the binaries).
func RunWithCluster(m *testing.M, c **Cluster) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	started, err := StartCluster(ctx, ClusterOptions{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*c = started
	defer started.Stop()
	return m.Run()
}
