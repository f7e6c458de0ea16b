package ring

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// cluster is shared by the package's tests; each test works in its own
// namespace.
var cluster *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.RunWithCluster(m, &cluster)) }

// The lease timing every cluster test uses: short, so expiry is seen in seconds.
const (
	testLease = 2 * time.Second
	testRenew = testLease / 3
)

// link is one test replica's connection to the API server: it records the
// writes it carries and can be cut, after which every new request fails (a
// watch already open keeps streaming, as through a partition of writes).
type link struct {
	cut    atomic.Bool
	mu     sync.Mutex
	writes []string
}

func (l *link) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if l.cut.Load() {
			return nil, errors.New("link cut by the test")
		}
		if req.Method != http.MethodGet {
			l.mu.Lock()
			l.writes = append(l.writes, req.Method+" "+req.URL.Path)
			l.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

// takeWrites returns the writes recorded since the last call.
func (l *link) takeWrites() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.writes
	l.writes = nil
	return w
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// replica is a Ring running in the test, with its own client, link and log.
type replica struct {
	*Ring
	link   *link
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// join starts a replica named id in namespace ns, with its Options changed
// by each of with; it stops when the test ends.
func join(t *testing.T, ns, id string, with ...func(*Options)) *replica {
	t.Helper()
	l, logs := &link{}, &logBuffer{}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.Wrap(l.wrap)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	opts := Options{
		Client:        client,
		Token:         testToken,
		Namespace:     ns,
		Name:          "test",
		Identity:      id,
		Address:       "http://" + id + ".test:8082",
		LeaseDuration: testLease,
		Logger:        logs.logger(),
	}
	for _, w := range with {
		w(&opts)
	}
	r, err := New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	rep := &replica{Ring: r, link: l, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rep.done)
		rep.err = r.Run(ctx)
	}()
	t.Cleanup(func() { rep.stop() })
	return rep
}

// joinAll starts one replica per identity and waits until each sees them all.
func joinAll(t *testing.T, ns string, ids ...string) []*replica {
	t.Helper()
	reps := make([]*replica, len(ids))
	for i, id := range ids {
		reps[i] = join(t, ns, id)
	}
	start := time.Now()
	waitMembers(t, testRenew, reps, ids...)
	t.Logf("every replica saw %v %s after the last one started", ids, time.Since(start).Round(time.Millisecond))
	return reps
}

// stop ends Run (a graceful leave) and returns its error.
func (r *replica) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// kill ends the replica the way SIGKILL does: nothing more reaches the API
// server, so its Lease is neither renewed nor deleted.
func (r *replica) kill() error {
	r.link.cut.Store(true)
	return r.stop()
}

// waitMembers waits, at most within, until every replica lists exactly ids.
func waitMembers(t *testing.T, within time.Duration, reps []*replica, ids ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	eventually(t, within, fmt.Sprintf("every replica lists members %v", want), func() bool {
		for _, r := range reps {
			if !slices.Equal(identities(r.Members()), want) {
				return false
			}
		}
		return true
	})
}

// eventually polls cond every 10ms and fails the test unless it holds within
// the given time; it returns when cond first held.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	var at time.Time
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, within, true, func(context.Context) (bool, error) {
		if cond() {
			at = time.Now()
			return true, nil
		}
		return false, nil
	})
	require.NoError(t, err, "%s within %s", what, within)
	return at
}

// owners maps each key to its owner as r computes it.
func owners(r *replica, keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		m, ok := r.Owner(k)
		if ok {
			out[k] = m.Identity
		}
	}
	return out
}

// bruteOwners computes, independently of the package, the rendezvous owner of
// each key over ids: the highest first 8 bytes of SHA-256(identity NUL key).
func bruteOwners(keys []string, ids ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		var best string
		var bestW uint64
		for _, id := range ids {
			sum := sha256.Sum256([]byte(id + "\x00" + k))
			if w := binary.BigEndian.Uint64(sum[:8]); best == "" || w > bestW {
				best, bestW = id, w
			}
		}
		out[k] = best
	}
	return out
}

// keys returns n repository names, repo-0 to repo-<n-1>.
func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("repo-%d", i)
	}
	return out
}
