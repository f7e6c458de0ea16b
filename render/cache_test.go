package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/resmap"
)

// countingRenderer counts the kustomize builds it runs.
func countingRenderer(t *testing.T) (*Renderer, *atomic.Int64) {
	r := newRenderer(t)
	var builds atomic.Int64
	r.run = func(fs *boundedFS, path string) (resmap.ResMap, error) {
		builds.Add(1)
		return runKustomize(fs, path)
	}
	return r, &builds
}

// copyTree copies testdata/modelrepo into a fresh directory.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	out, err := exec.Command("cp", "-R", filepath.Join("testdata", "modelrepo")+"/.", dst).CombinedOutput()
	require.NoError(t, err, string(out))
	return dst
}

func TestRenderingUnchangedInputsAgainRunsNoBuild(t *testing.T) {
	r, builds := countingRenderer(t)
	root := copyTree(t)
	first, err := r.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)
	second, err := r.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), builds.Load())
	assert.Equal(t, first, second, "a hit decodes the same result")
	assert.NotSame(t, first, second, "each caller gets a result of its own")
	for i, o := range first.Objects {
		assert.Equal(t, o.Object, second.Objects[i].Object, "%s: integers stay int64", o.GetName())
	}

	// Another checkout (another commit) with the same content hits too: the
	// key is the content of the inputs, not where they are or their mtimes.
	_, err = r.Render(t.Context(), Request{Root: copyTree(t), Path: "environments/dev"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), builds.Load())
}

func TestChangingAnyInputRebuilds(t *testing.T) {
	r, builds := countingRenderer(t)
	root := copyTree(t)
	first, err := r.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)

	pin := filepath.Join(root, "environments", "dev", "thresholds.properties")
	require.NoError(t, os.WriteFile(pin, []byte("fraud.threshold=0.9\n"), 0o644))
	second, err := r.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)
	assert.Equal(t, int64(2), builds.Load())
	assert.NotEqual(t, first.Digest, second.Digest)
}

func TestAFileOutsideTheInputsDoesNotInvalidateTheCache(t *testing.T) {
	r, builds := countingRenderer(t)
	root := copyTree(t)
	_, err := r.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "environments", "prod", "models.yaml"), []byte("# changed\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "README.md"), []byte("hello\n"), 0o644))
	_, err = r.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), builds.Load())
}

func TestConcurrentRendersAreSafe(t *testing.T) {
	r := newRenderer(t)
	root := filepath.Join("testdata", "modelrepo")
	envs := []string{"environments/dev", "environments/staging", "environments/prod"}
	digests := make([]string, 12)
	var wg sync.WaitGroup
	for i := range digests {
		wg.Go(func() {
			res, err := r.Render(t.Context(), Request{Root: root, Path: envs[i%3]})
			if assert.NoError(t, err) {
				digests[i] = res.Digest
			}
		})
	}
	wg.Wait()
	for i := 3; i < len(digests); i++ {
		assert.Equal(t, digests[i%3], digests[i])
	}
}

func TestACacheMissRecordsNothingOfThePreviousInputs(t *testing.T) {
	r := newRenderer(t)
	root := copyTree(t)
	first, err := r.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)
	require.Contains(t, first.Inputs, "environments/dev/thresholds.properties")

	// Every previous input changes, so the lookup reads them all and misses.
	for _, in := range first.Inputs {
		full := filepath.Join(root, filepath.FromSlash(in))
		b, err := os.ReadFile(full)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(full, append(b, []byte("\n# changed\n")...), 0o644))
	}
	fs, err := newBoundedFS(t.Context(), root, r.limits.maxFile, r.limits.maxBuild)
	require.NoError(t, err)
	_, hit := r.lookup(fs, "environments/dev")
	assert.False(t, hit)
	assert.Empty(t, fs.inputs(), "checking the cache must not add to the next build's input set")
}

func TestTheCacheIsBoundedInBytesAndKeepsTheNewest(t *testing.T) {
	root := filepath.Join("testdata", "modelrepo")
	probe := newRenderer(t)
	res, err := probe.Render(t.Context(), Request{Root: root, Path: "environments/dev"})
	require.NoError(t, err)
	one, _ := probe.cache.usage()
	require.Positive(t, one)

	// Room for two renders of dev, not three.
	r, err := New(Options{CacheBytes: 2*one + one/2})
	require.NoError(t, err)
	var builds int
	r.run = func(fs *boundedFS, dir string) (resmap.ResMap, error) { builds++; return runKustomize(fs, dir) }
	for _, key := range []string{"a/dev", "b/dev", "c/dev"} {
		_, err := r.Render(t.Context(), Request{Root: root, Path: "environments/dev", Key: key})
		require.NoError(t, err)
	}
	used, entries := r.cache.usage()
	assert.Equal(t, 2, entries, "the oldest was evicted to stay within the bytes")
	assert.LessOrEqual(t, used, 2*one+one/2)

	_, err = r.Render(t.Context(), Request{Root: root, Path: "environments/dev", Key: "c/dev"})
	require.NoError(t, err)
	assert.Equal(t, 3, builds, "the newest is a cache hit")
	_, err = r.Render(t.Context(), Request{Root: root, Path: "environments/dev", Key: "a/dev"})
	require.NoError(t, err)
	assert.Equal(t, 4, builds, "the evicted one is built again")
	assert.Positive(t, res.bytes)
}
