package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/faulttest"
	"github.com/ferry-gitops/ferry/internal/ring"
)

func TestThreeReplicasShareThirtyRepositoriesAndHandThemOverSafely(t *testing.T) {
	f := newFleet(t, 30)
	a, b, c := f.ids[0], f.ids[1], f.ids[2]
	for _, id := range f.ids {
		f.start(id)
	}
	all, two, alone := f.owners(a, b, c), f.owners(a, b), f.owners(a)
	// Each step runs as a subtest on the same fleet, in order: one that
	// fails does not hide the others.
	step := func(name string, fn func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			f.t = t
			defer func() { f.t = f.root }()
			fn(t)
		})
	}

	step("ownership splits evenly", func(t *testing.T) {
		// Rendezvous hashing draws each name's owner at random: for 30
		// names, each of three replicas owns 10 ± 3 for about two name sets
		// in three (binomially; ring's TestOwnershipSpreadsEvenly checks the
		// spread on thousands). These names, with StatefulSet identities,
		// split 7/12/11.
		for id, n := range count(all) {
			assert.InDelta(t, 10, n, 3, "replica %s owns %d of the 30 repositories", id, n)
		}
	})

	heads := map[string]string{}
	step("a webhook sent to any replica is applied by the owner", func(t *testing.T) {
		heads = f.round(a, b, c)
		assert.Equal(t, all, appliedBy(f.applied(heads, time.Minute)))
	})

	step("status from any replica shows every environment with its owner", func(t *testing.T) {
		for _, id := range f.ids {
			var resp statusResponse
			err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				body, err := f.ferries[id].Status(ctx)
				if err != nil {
					return false, err
				}
				resp = statusResponse{}
				if err := json.Unmarshal(body, &resp); err != nil {
					return false, err
				}
				return !slices.ContainsFunc(resp.Environments, func(s environmentStatus) bool { return s.Revision != heads[s.Repository] }), nil
			})
			require.NoError(t, err, "every environment at its head in %s's status: %+v", id, resp)
			require.Len(t, resp.Environments, 30)
			assert.Equal(t, []string{a, b, c}, resp.Members)
			assert.Empty(t, resp.Unreachable)
			for _, s := range resp.Environments {
				assert.Equal(t, all[s.Repository], s.Owner, "%s's owner, as %s reports it", s.Repository, id)
			}
		}
		var out bytes.Buffer
		require.NoError(t, run(t.Context(), []string{"status", "--server", f.ferries[b].Admin}, &out, io.Discard))
		assert.Contains(t, out.String(), "OWNER")
		assert.Regexp(t, `repo-0\s+dev\s+`+all["repo-0"]+`\s`, out.String(), "ferry status prints each environment's owner")
	})

	step("ferry sync leaves the ring's repositories to their owners unless --force, and then applies beside them", func(t *testing.T) {
		cluster := sharedCluster(t)
		t.Setenv("FERRY_TEST_RING_TOKEN", ringCanary) // to verify the members' Leases
		cli := f.config(cluster.Kubeconfig, cluster.Kubeconfig, "repo-0")
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"sync", "--config", cli}, &stdout, &stderr)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "nothing to sync: the ring's 3 live members own every repository; --force syncs them anyway")
		assert.Contains(t, stderr.String(), "repository repo-0: skipped, ferry serve's replica "+all["repo-0"]+" owns it (--force syncs it anyway)")

		// A new commit, applied at once by its owner (a webhook) and by
		// ferry sync --force: the inventory's hold keeps the two apart.
		wt := f.trees["repo-0"]
		wt.Write(t, "environments/dev/round.yaml", roundConfigMap(1000))
		head := wt.Commit(t, "applied twice at once")
		wt.Push(t)
		synced := make(chan error, 1)
		go func() {
			synced <- run(t.Context(), []string{"sync", "--config", cli, "--force"}, io.Discard, io.Discard)
		}()
		f.notify(all["repo-0"], "repo-0", head)
		require.NoError(t, <-synced)
		f.applied(map[string]string{"repo-0": head}, time.Minute)
		f.assertNoOverlap()
	})

	step("3 → 2 → 3 moves only the repositories of the replica that left, and back", func(t *testing.T) {
		require.NoError(t, f.ferries[c].Stop())
		for r, o := range all {
			if o != c {
				assert.Equal(t, o, two[r], "%s stays with %s", r, o)
			}
		}
		heads = f.round(a, b)
		assert.Equal(t, two, appliedBy(f.applied(heads, time.Minute)))
		f.start(c)
		heads = f.round(a, b, c)
		assert.Equal(t, all, appliedBy(f.applied(heads, time.Minute)))
	})

	step("a replica killed: status says it does not answer, and the others reconcile its repositories within two lease durations", func(t *testing.T) {
		heads = f.round() // no webhooks: only the new owners, fetching what they win, see these
		f.ferries[c].Kill()
		killed := time.Now()
		var unreachableSeen bool
		for !unreachableSeen && time.Since(killed) < ringLease {
			var resp statusResponse
			body, err := f.ferries[a].Status(t.Context())
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(body, &resp))
			for _, u := range resp.Unreachable {
				unreachableSeen = unreachableSeen || u.Member == c
			}
			for _, s := range resp.Environments {
				if s.Owner == c {
					assert.True(t, s.OwnerUnreachable, "%s: its owner did not answer", s.Repository)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		assert.True(t, unreachableSeen, "until its Lease expires, status says the killed replica did not answer")
		took := f.applied(onlyOf(heads, all, c), 2*ringLease)
		for r, rec := range took {
			assert.Equal(t, two[r], rec.By, "%s is applied by its new owner", r)
			assert.Less(t, rec.End.Sub(killed), 2*ringLease, "%s reconciled within two lease durations of the kill", r)
		}
	})

	step("a replica cut off from the home cluster stops mutating before its Lease expires", func(t *testing.T) {
		gate := faulttest.NewGate(0, func(*http.Request) bool { return true })
		f.proxies[b].SetGate(gate)
		t.Cleanup(gate.Open)
		require.True(t, gate.WaitHolding(t.Context(), 1), "b's next renewal is held")
		lease, err := sharedCluster(t).Client.CoordinationV1().Leases(f.ns).Get(t.Context(), ring.LeasePrefix+b, metav1.GetOptions{})
		require.NoError(t, err)
		expires := lease.Spec.RenewTime.Add(ringLease)
		// b is fenced RenewEvery (a third of the lease) before its Lease
		// expires: from then on, nothing b is told may reach the cluster.
		time.Sleep(time.Until(expires.Add(-ringLease / 3)))
		heads = f.round(b) // every webhook to the replica cut off
		took := f.applied(heads, 4*ringLease)
		for r, rec := range took {
			assert.Equal(t, alone[r], rec.By, "%s is applied by a", r)
			if two[r] == b {
				assert.True(t, rec.Start.After(expires), "%s: b's repositories are applied only after b's Lease expired", r)
			}
		}
		for _, r := range f.repos {
			records, err := f.records.ApplyRecords(t.Context(), apply.Inventory{Repository: r, Environment: "dev"})
			require.NoError(t, err)
			for _, rec := range records {
				if rec.By == b {
					assert.True(t, rec.End.Before(expires), "%s: b's last apply ended before its Lease expired", r)
				}
			}
		}
	})

	step("no two replicas ever applied one environment at once, and the token never showed", func(t *testing.T) {
		f.assertNoOverlap()
		for id, fe := range f.ferries {
			assert.NotContains(t, fe.Logs(), ringCanary, "replica %s's log", id)
		}
	})
}
