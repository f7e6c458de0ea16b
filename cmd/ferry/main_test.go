package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// The cluster is started on first use and shared by the package's tests;
// tests that do not need one (render, version) never start it.
var (
	clusterOnce sync.Once
	shared      *testenv.Cluster
	clusterErr  error
)

func sharedCluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		shared, clusterErr = testenv.StartCluster(ctx, testenv.ClusterOptions{})
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}
