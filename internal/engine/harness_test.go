package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

var cluster *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.RunWithCluster(m, &cluster)) }

var envNames = []string{"dev", "staging", "prod"}

func pin(version string) string { return testenv.ModelPin(version) }

// harness runs an engine over a repository served by a real Git server and
// environments in the shared kwok cluster.
var harnessSeq atomic.Int64

type harness struct {
	t      testing.TB
	prefix string // of the environments' namespaces
	repo   string // ferry's name for the repository: each test owns its inventories
	srv    *testenv.GitServer
	wt     *testenv.WorkTree
	eng    *Engine
	reg    *prometheus.Registry
	stop   func()
	data   string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	n := harnessSeq.Add(1)
	h := &harness{t: t, prefix: fmt.Sprintf("e2e-%d-%d", os.Getpid()%10000, n), repo: fmt.Sprintf("models-%d", n), data: t.TempDir()}
	h.srv = testenv.NewGitServer(t, testenv.GitServerOptions{})
	h.srv.CreateRepo(t, "models")
	h.wt = h.srv.Clone(t, "models")
	h.wt.WriteAll(t, testenv.ModelRepo(h.prefix, envNames...))
	h.wt.Commit(t, "models and environments")
	h.wt.Push(t)
	t.Cleanup(func() {
		for _, env := range envNames {
			cluster.Client.CoreV1().Namespaces().Delete(context.Background(), h.prefix+"-"+env, metav1.DeleteOptions{})
		}
	})
	return h
}

// start builds an engine (a fresh one each time: a restart) and runs it.
func (h *harness) start(mutate ...func(*Options)) {
	t := h.t
	t.Helper()
	if h.stop != nil {
		h.stop()
	}
	src, err := source.New(source.Options{DataDir: h.data, Author: object.Signature{Name: "Ferry", Email: "ferry@example.com"}})
	require.NoError(t, err)
	repo, err := src.Open(source.RepoOptions{Name: h.repo, URL: h.srv.URL + "/models.git", Branch: "main", AllowLocal: true})
	require.NoError(t, err)
	applier, err := apply.New(apply.Options{Config: cluster.Config})
	require.NoError(t, err)
	t.Cleanup(applier.Stop)
	renderer, err := render.New(render.Options{})
	require.NoError(t, err)
	var envs []Environment
	for _, env := range envNames {
		envs = append(envs, Environment{Name: env, Path: "environments/" + env, Applier: applier})
	}
	h.reg = prometheus.NewRegistry()
	opts := Options{
		Repositories:  []Repository{{Name: h.repo, Source: repo, Environments: envs}},
		Renderer:      renderer,
		HealthTimeout: 20 * time.Second,
		Registerer:    h.reg,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	for _, m := range mutate {
		m(&opts)
	}
	h.eng, err = New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.eng.Run(ctx) }()
	h.stop = func() {
		cancel()
		require.NoError(t, <-done)
		h.stop = nil
	}
	t.Cleanup(func() {
		if h.stop != nil {
			h.stop()
		}
	})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// commit writes files, commits and pushes, and returns the new head.
func (h *harness) commit(files map[string]string, message string) string {
	for path, content := range files {
		h.wt.Write(h.t, path, content)
	}
	sha := h.wt.Commit(h.t, message)
	h.wt.Push(h.t)
	return sha
}

// status returns the status of env.
func (h *harness) status(env string) Status {
	for _, s := range h.eng.Status() {
		if s.Environment == env {
			return s
		}
	}
	h.t.Fatalf("no status for %s", env)
	return Status{}
}

// eventually waits, at most a minute, until cond holds for env's status.
func (h *harness) eventually(env string, cond func(Status) bool, what string) Status {
	h.t.Helper()
	var last Status
	err := wait.PollUntilContextTimeout(h.t.Context(), 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		last = h.status(env)
		return cond(last), nil
	})
	require.NoError(h.t, err, "%s: %s; last status: %+v", env, what, last)
	return last
}

func (h *harness) counter(name string, labels ...string) float64 {
	mfs, err := h.reg.Gather()
	require.NoError(h.t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			}
			if hi := m.GetHistogram(); hi != nil {
				total += float64(hi.GetSampleCount())
			}
		}
	}
	return total
}
