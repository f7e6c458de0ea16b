package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/resmap"
)

var (
	modelrepo = filepath.Join("testdata", "modelrepo")
	dev       = Request{Root: modelrepo, Path: "environments/dev"}
	staging   = Request{Root: modelrepo, Path: "environments/staging"}
)

func TestAStuckBuildDoesNotStallOtherEnvironments(t *testing.T) {
	r := newRenderer(t)
	started := make(chan struct{})
	r.run = func(fs *boundedFS, path string) (resmap.ResMap, error) {
		if path != dev.Path {
			return runKustomize(fs, path)
		}
		close(started)
		// A build busy past its deadline, touching files as kustomize does:
		// the first access after the deadline ends it.
		for {
			if _, err := fs.ReadFile(filepath.Join(fs.root, "environments", "dev", "kustomization.yaml")); err != nil {
				return nil, err
			}
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	stuck := make(chan error, 1)
	go func() {
		_, err := r.Render(ctx, dev)
		stuck <- err
	}()
	<-started

	other, cancelOther := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancelOther()
	begin := time.Now()
	res, err := r.Render(other, staging)
	require.NoError(t, err, "another environment renders once the stuck build's deadline has passed")
	assert.NotEmpty(t, res.Objects)
	t.Logf("the other environment rendered %v after the stuck build started", time.Since(begin))

	err = <-stuck
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, IsTransient(err))
}

func TestARenderWaitingForTheBuildSlotReturnsWhenItsContextEnds(t *testing.T) {
	r := newRenderer(t)
	holding, release := make(chan struct{}), make(chan struct{})
	var stagingBuilds atomic.Int64
	r.run = func(fs *boundedFS, path string) (resmap.ResMap, error) {
		if path == dev.Path {
			close(holding)
			<-release
		} else {
			stagingBuilds.Add(1)
		}
		return runKustomize(fs, path)
	}
	first := make(chan error, 1)
	go func() {
		_, err := r.Render(t.Context(), dev)
		first <- err
	}()
	<-holding

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res, err := r.Render(ctx, staging)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, IsTransient(err))
	assert.Contains(t, err.Error(), "render environments/staging: wait for the kustomize build slot")
	assert.Nil(t, res)

	close(release)
	require.NoError(t, <-first)
	assert.Zero(t, stagingBuilds.Load(), "a render that gave up waiting never starts its build")
}

func TestOverLimitBuildsFailNamingTheLimit(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{"a build reading more than MaxBuildBytes", Options{MaxBuildBytes: 600}, []string{"over the 600-byte limit for one build (MaxBuildBytes)", "environments/"}},
		{"a build producing more than MaxObjects", Options{MaxObjects: 3}, []string{"the build produced 4 objects, over the limit of 3 (MaxObjects)"}},
		{"Models expanding past MaxObjects", Options{MaxObjects: 4}, []string{"expanding Models brings the environment to", "over the limit of 4 (MaxObjects)"}},
		{"output over MaxOutputBytes", Options{MaxOutputBytes: 2000}, []string{"over the limit of 2000 bytes of JSON (MaxOutputBytes)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.opts)
			require.NoError(t, err)
			res, err := r.Render(t.Context(), dev)
			require.Error(t, err)
			assert.Nil(t, res)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.False(t, IsTransient(err), "a limit is not lifted by retrying")
		})
	}
}

func TestNegativeLimitsAreRefused(t *testing.T) {
	for _, opts := range []Options{{MaxBuildBytes: -1}, {MaxObjects: -1}, {MaxOutputBytes: -1}, {MaxFileBytes: -1}, {CacheBytes: -1}} {
		_, err := New(opts)
		assert.Error(t, err, "%+v", opts)
	}
}

func TestIsTransientIsTrueExactlyForContextErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"a deadline, wrapped", fmt.Errorf("render env: kustomize build: %w", context.DeadlineExceeded), true},
		{"a cancellation, wrapped", fmt.Errorf("render env: %w", context.Canceled), true},
		{"a refusal", &RefusedError{Kustomization: "env/kustomization.yaml", Ref: "http://x", Reason: reasonRemote}, false},
		{"a plain error", errors.New("env/kustomization.yaml: bad"), false},
		{"no error", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, IsTransient(tc.err))
		})
	}
}

// TestTheKustomizeInternalsAreTheVerifiedVersion guards the go:linkname
// declarations in kustomize.go, whose signatures nothing else checks. A test
// binary carries no dependency versions, so it reads the module's go.mod,
// which records the version every build of ferry selects.
func TestTheKustomizeInternalsAreTheVerifiedVersion(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	require.NoError(t, err)
	for _, line := range strings.Split(string(gomod), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "sigs.k8s.io/kustomize/api" {
			require.Equal(t, verifiedKustomizeAPI, fields[1],
				"kustomize/api moved: check the go:linkname signatures in render/kustomize.go against its internal/target and internal/plugins/loader, then update verifiedKustomizeAPI")
			return
		}
	}
	t.Fatal("go.mod does not require sigs.k8s.io/kustomize/api")
}
