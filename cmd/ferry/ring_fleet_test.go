package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/faulttest"
	"github.com/ferry-gitops/ferry/internal/ring"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/webhooks"
)

// ringLease is the replicas' lease duration in these tests: the shortest
// coordination.leaseDuration accepts.
const ringLease = 3 * time.Second

// ringCanary is the ring's token in these tests: it must never show.
const ringCanary = "ring-CANARY-token"

// fleet is three `ferry serve` processes sharing thirty repositories through
// a ring on the shared cluster, which is both their home cluster (each
// reaches it for its Lease through a proxy of its own, so the test can cut
// one off) and the clusters their environments deploy to (each through
// another proxy of its own, which records every object it writes).
type fleet struct {
	root    *testing.T // owns the processes and servers, for the whole test
	t       *testing.T // the running subtest, for assertions
	bin     string
	ns      string // the ring's Leases
	prefix  string // of the environments' namespaces
	repos   []string
	trees   map[string]*testenv.WorkTree
	ids     []string
	configs map[string]string              // ferry.yaml by identity
	proxies map[string]*faulttest.APIProxy // to the home cluster
	writes  *writeLog                      // every object write, by replica
	ferries map[string]*testenv.Ferry
	records *apply.Applier
	rounds  int
	// repoYAML is each repository's entry in ferry.yaml.
	repoYAML map[string]string
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	c := sharedCluster(t)
	seq := e2eSeq.Add(1)
	f := &fleet{
		root: t, t: t, writes: &writeLog{}, bin: testenv.BuildFerry(t), ns: c.Namespace(t), prefix: fmt.Sprintf("ring-%d-%d", os.Getpid()%100000, seq),
		ids: []string{"ferry-0", "ferry-1", "ferry-2"}, trees: map[string]*testenv.WorkTree{},
		configs: map[string]string{}, proxies: map[string]*faulttest.APIProxy{}, ferries: map[string]*testenv.Ferry{},
	}
	var err error
	f.records, err = apply.New(apply.Options{Config: c.Config})
	require.NoError(t, err)

	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	f.repoYAML = map[string]string{}
	for i := range n {
		name := fmt.Sprintf("repo-%d", i)
		f.repos = append(f.repos, name)
		srv.CreateRepo(t, name)
		wt := srv.Clone(t, name)
		ns := fmt.Sprintf("%s-%02d", f.prefix, i)
		wt.WriteAll(t, map[string]string{
			"environments/dev/kustomization.yaml": "namespace: " + ns + "\nresources: [namespace.yaml, round.yaml]\n",
			"environments/dev/namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n",
			"environments/dev/round.yaml":         roundConfigMap(0),
		})
		wt.Commit(t, "round 0")
		wt.Push(t)
		f.trees[name] = wt
		t.Cleanup(func() {
			c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		})
		f.repoYAML[name] = fmt.Sprintf(`  - name: %s
    url: %s/%s.git
    allowLocal: true
    github: {owner: acme, repo: %s}
    environments:
      - {name: dev, path: environments/dev, cluster: {kubeconfig: %%q}}
`, name, srv.URL, name, name)
	}
	for _, id := range f.ids {
		f.proxies[id] = faulttest.NewAPIProxy(t, c.Config)
		envs := faulttest.NewAPIProxy(t, c.Config)
		envs.SetGate(faulttest.NewGate(math.MaxInt, func(r *http.Request) bool { f.writes.note(id, r); return false }))
		f.configs[id] = f.config(f.proxies[id].Kubeconfig(t), envs.Kubeconfig(t), f.repos...)
	}
	return f
}

// config writes a ferry.yaml of the ring over repos, with a data directory
// of its own, the home cluster reached through home and the environments'
// through envs, and returns its path.
func (f *fleet) config(home, envs string, repos ...string) string {
	f.root.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `listen: 127.0.0.1:0
adminListen: 127.0.0.1:0
resync: "@every 1h"
dataDir: %q
webhook: {secretEnv: FERRY_TEST_WEBHOOK_SECRET}
coordination:
  kubeconfig: %q
  namespace: %s
  ring: test
  leaseDuration: %s
  listen: 127.0.0.1:0
  tokenEnv: FERRY_TEST_RING_TOKEN
repositories:
`, f.root.TempDir(), home, f.ns, ringLease)
	for _, r := range repos {
		fmt.Fprintf(&b, f.repoYAML[r], envs)
	}
	path := filepath.Join(f.root.TempDir(), "ferry.yaml")
	require.NoError(f.root, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

func roundConfigMap(round int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: round}\ndata: {round: %q}\n", fmt.Sprint(round))
}

// start starts replica id.
func (f *fleet) start(id string) {
	f.t.Helper()
	f.ferries[id] = testenv.StartFerry(f.root, f.bin, f.configs[id], []string{
		"FERRY_TEST_WEBHOOK_SECRET=" + hookSecret, "FERRY_TEST_RING_TOKEN=" + ringCanary, "POD_NAME=" + id,
	}, 2*time.Minute)
}

// owners maps each repository to its owner among the members ids, as
// every replica computes it.
func (f *fleet) owners(ids ...string) map[string]string {
	members := make([]ring.Member, len(ids))
	for i, id := range ids {
		members[i] = ring.Member{Identity: id}
	}
	out := map[string]string{}
	for _, r := range f.repos {
		m, _ := ring.OwnerAmong(members, r)
		out[r] = m.Identity
	}
	return out
}

// round commits round.yaml anew in every repository, pushes it and sends
// its webhook to the live replicas in turn (most to a replica that does not
// own the repository); it returns each repository's commit.
func (f *fleet) round(to ...string) map[string]string {
	f.t.Helper()
	f.rounds++
	heads := map[string]string{}
	for i, r := range f.repos {
		wt := f.trees[r]
		wt.Write(f.t, "environments/dev/round.yaml", roundConfigMap(f.rounds))
		heads[r] = wt.Commit(f.t, fmt.Sprintf("round %d", f.rounds))
		wt.Push(f.t)
		if len(to) > 0 {
			f.notify(to[i%len(to)], r, heads[r])
		}
	}
	return heads
}

// notify sends replica id a signed push webhook for repository r at sha.
func (f *fleet) notify(id, r, sha string) {
	f.t.Helper()
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":%q,
"repository":{"full_name":"acme/%s","clone_url":"https://github.com/acme/%s.git"},
"head_commit":{"id":%q,"modified":["environments/dev/round.yaml"]}}`, sha, r, r, sha))
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodPost, f.ferries[id].Public+"/webhooks/github", bytes.NewReader(body))
	require.NoError(f.t, err)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%s", r, sha))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", webhooks.Sign([]byte(hookSecret), body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	resp.Body.Close()
	require.Equal(f.t, http.StatusAccepted, resp.StatusCode, "replica %s takes the webhook for %s", id, r)
}

// applied waits, at most within, until every repository's dev inventory
// records an apply of its head, and returns those applies by repository.
func (f *fleet) applied(heads map[string]string, within time.Duration) map[string]apply.ApplyRecord {
	f.t.Helper()
	out := map[string]apply.ApplyRecord{}
	err := wait.PollUntilContextTimeout(f.t.Context(), 50*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		for r, head := range heads {
			if _, ok := out[r]; ok {
				continue
			}
			records, err := f.records.ApplyRecords(ctx, apply.Inventory{Repository: r, Environment: "dev"})
			if err != nil {
				return false, err
			}
			for _, rec := range records {
				if rec.Revision == head {
					out[r] = rec
				}
			}
		}
		return len(out) == len(heads), nil
	})
	if err != nil {
		var missing []string
		for r := range heads {
			if _, ok := out[r]; !ok {
				missing = append(missing, r)
			}
		}
		slices.Sort(missing)
		f.t.Fatalf("not applied within %s: %v", within, missing)
	}
	return out
}

// appliedBy maps each repository to the replica that applied it.
func appliedBy(records map[string]apply.ApplyRecord) map[string]string {
	out := map[string]string{}
	for r, rec := range records {
		out[r] = rec.By
	}
	return out
}

// writeLog records the object writes each replica sends to the
// environments' cluster (not its bookkeeping in ferry-system).
type writeLog struct {
	mu     sync.Mutex
	writes []objectWrite
}

type objectWrite struct {
	by, method, path string
	at               time.Time
}

func (l *writeLog) note(by string, r *http.Request) {
	if r.Method == http.MethodGet || strings.Contains(r.URL.Path, "/namespaces/ferry-system/") {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, objectWrite{by: by, method: r.Method, path: r.URL.Path, at: time.Now()})
}

// assertNoOverlap checks that no two replicas ever applied one environment
// at once, from two sides: the windows recorded on each inventory never
// overlap, and every object write a replica sent, as its proxy saw it, falls
// inside one of that replica's own windows on the environment it wrote to
// (a write outside any would be a replica applying without holding the
// inventory, whose window a failed save never records).
func (f *fleet) assertNoOverlap() {
	f.t.Helper()
	windows := map[string][]apply.ApplyRecord{} // by namespace
	for i, r := range f.repos {
		records, err := f.records.ApplyRecords(f.t.Context(), apply.Inventory{Repository: r, Environment: "dev"})
		require.NoError(f.t, err)
		slices.SortFunc(records, func(a, b apply.ApplyRecord) int { return a.Start.Compare(b.Start) })
		for i := 1; i < len(records); i++ {
			prev, next := records[i-1], records[i]
			assert.False(f.t, next.Start.Before(prev.End), "%s: the apply by %s from %s overlaps the one by %s until %s",
				r, next.By, next.Start.Format(time.StampMicro), prev.By, prev.End.Format(time.StampMicro))
		}
		windows[fmt.Sprintf("%s-%02d", f.prefix, i)] = records
	}
	f.writes.mu.Lock()
	defer f.writes.mu.Unlock()
	require.NotEmpty(f.t, f.writes.writes, "the proxies saw the replicas' writes")
	for _, w := range f.writes.writes {
		ns := namespaceOf(w.path)
		records, ok := windows[ns]
		if !ok {
			continue // not one of the fleet's environments
		}
		inside := slices.ContainsFunc(records, func(rec apply.ApplyRecord) bool {
			return rec.By == w.by && !w.at.Before(rec.Start) && !w.at.After(rec.End)
		})
		assert.True(f.t, inside, "%s %s %s at %s: outside every apply window of %s on %s", w.by, w.method, w.path, w.at.Format(time.StampMicro), w.by, ns)
	}
}

// namespaceOf is the namespace an API path writes in: a namespaced object's
// or the Namespace itself.
func namespaceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return ""
}

func count(owners map[string]string) map[string]int {
	out := map[string]int{}
	for _, o := range owners {
		out[o]++
	}
	return out
}

// onlyOf keeps the heads of the repositories owners gives to id.
func onlyOf(heads, owners map[string]string, id string) map[string]string {
	out := map[string]string{}
	for r, h := range heads {
		if owners[r] == id {
			out[r] = h
		}
	}
	return out
}
