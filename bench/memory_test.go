package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// BenchmarkServeMemory runs ferry serve over 100 repositories of 3
// environments each (a Model and its namespace per environment), waits until
// all 300 are healthy (reporting the peak RSS of that cold start, which
// creates every object), restarts it (a full fetch and drift check of every
// environment) and reports its RSS once all are healthy again, and its peak.
// Budget: 150 MiB.
// Run: go test ./bench -run '^$' -bench ServeMemory -benchtime 1x -timeout 30m
func BenchmarkServeMemory(b *testing.B) {
	const repos = 100
	envs := []string{"dev", "staging", "prod"}
	ferryBin := buildFerry(b)
	// kwok nodes take 110 pods each: 300 model servers need 3 nodes.
	ctx, cancel := context.WithTimeout(b.Context(), 3*time.Minute)
	cluster, err := testenv.StartCluster(ctx, testenv.ClusterOptions{Nodes: 4})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cluster.Stop() })
	srv := testenv.NewGitServer(b, testenv.GitServerOptions{})

	// One repository pushed for real, then copied: every copy has its own
	// namespaces, so each is its own commit.
	var config strings.Builder
	addr := freeAddr(b)
	fmt.Fprintf(&config, "listen: %q\nresync: \"@every 1h\"\ndataDir: %q\nwebhook: {disabled: true}\nrepositories:\n", addr, b.TempDir())
	for i := range repos {
		name := fmt.Sprintf("m%03d", i)
		srv.CreateRepo(b, name)
		wt := srv.Clone(b, name)
		wt.WriteAll(b, testenv.ModelRepo(name, envs...))
		wt.Commit(b, "models")
		wt.Push(b)
		fmt.Fprintf(&config, "  - name: %s\n    url: %s/%s.git\n    allowLocal: true\n    environments:\n", name, srv.URL, name)
		for _, env := range envs {
			fmt.Fprintf(&config, "      - {name: %s, path: environments/%s, cluster: {kubeconfig: %q}}\n", env, env, cluster.Kubeconfig)
		}
	}
	path := filepath.Join(b.TempDir(), "ferry.yaml")
	if err := os.WriteFile(path, []byte(config.String()), 0o600); err != nil {
		b.Fatal(err)
	}

	for b.Loop() {
		start := time.Now()
		ferry := startServe(b, ferryBin, path, addr, nil, 5*time.Minute)
		err := wait.PollUntilContextTimeout(b.Context(), time.Second, 15*time.Minute, true, func(context.Context) (bool, error) {
			return strings.Count(ferry.status(b), `"health":"Healthy"`) == repos*len(envs), nil
		})
		if err != nil {
			b.Fatalf("not every environment became healthy: %v", err)
		}
		settled := time.Since(start)
		_, coldPeak := ferry.rss(b)
		// A restart: every environment is fetched and drift-checked again.
		ferry.cmd.Process.Signal(os.Interrupt)
		ferry.cmd.Wait()
		ferry = startServe(b, ferryBin, path, addr, nil, 5*time.Minute)
		wait.PollUntilContextTimeout(b.Context(), time.Second, 10*time.Minute, true, func(context.Context) (bool, error) {
			return strings.Count(ferry.status(b), `"health":"Healthy"`) == repos*len(envs), nil
		})
		current, peak := ferry.rss(b)
		b.ReportMetric(current, "rss-MiB")
		b.ReportMetric(peak, "peak-rss-MiB")
		b.ReportMetric(coldPeak, "cold-peak-rss-MiB")
		b.ReportMetric(settled.Seconds(), "cold-settle-s")
		b.ReportMetric(float64(repos*len(envs)), "environments")
	}
}
