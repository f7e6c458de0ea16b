package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	ferryBin := testenv.BuildFerry(b)
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
	fmt.Fprintf(&config, listenConfig+"resync: \"@every 1h\"\ndataDir: %q\nwebhook: {disabled: true}\nrepositories:\n", b.TempDir())
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
		ferry := testenv.StartFerry(b, ferryBin, path, nil, 5*time.Minute)
		healthy(b, ferry, repos*len(envs), 15*time.Minute)
		settled := time.Since(start)
		_, coldPeak, err := ferry.RSS()
		if err != nil {
			b.Fatal(err)
		}
		// A restart: every environment is fetched and drift-checked again.
		if err := ferry.Stop(); err != nil {
			b.Fatalf("stop ferry serve: %v\n%s", err, ferry.Tail(20))
		}
		ferry = testenv.StartFerry(b, ferryBin, path, nil, 5*time.Minute)
		healthy(b, ferry, repos*len(envs), 10*time.Minute)
		current, peak, err := ferry.RSS()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(current, "rss-MiB")
		b.ReportMetric(peak, "peak-rss-MiB")
		b.ReportMetric(coldPeak, "cold-peak-rss-MiB")
		b.ReportMetric(settled.Seconds(), "cold-settle-s")
		b.ReportMetric(float64(repos*len(envs)), "environments")
	}
}
