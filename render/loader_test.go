package render

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unscanned returns a Renderer without the kustomization scan, so that what
// it refuses, the build's loader refuses.
func unscanned(t *testing.T) *Renderer {
	t.Helper()
	r := newRenderer(t)
	r.scan = func(*boundedFS, string) error { return nil }
	return r
}

// countingServer serves a ConfigMap to any request and counts them.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\ndata: {a: b}\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func assertRefusedRemote(t *testing.T, res *Result, err error, ref string) {
	t.Helper()
	require.Error(t, err)
	assert.Nil(t, res)
	refused, ok := errors.AsType[*RefusedError](err)
	require.True(t, ok, "a *RefusedError, got: %v", err)
	assert.Equal(t, ref, refused.Ref)
	assert.Contains(t, err.Error(), ref)
	assert.Contains(t, err.Error(), "vendor the file or base into the repository")
	assert.False(t, IsTransient(err))
}

func TestEveryURLIsRefusedByTheLoaderWhateverFieldNamesIt(t *testing.T) {
	srv, hits := countingServer(t)
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: local}\ndata: {a: b}\n"
	cases := []struct {
		name string
		// kustomization is env/kustomization.yaml, with URL for the reference.
		kustomization string
		extra         map[string]string
	}{
		{name: "resources", kustomization: "resources: [URL]\n"},
		{name: "bases", kustomization: "bases: [URL]\n"},
		{name: "components", kustomization: "resources: [cm.yaml]\ncomponents: [URL]\n"},
		{name: "patches[].path", kustomization: "resources: [cm.yaml]\npatches:\n- path: URL\n"},
		{name: "patchesStrategicMerge", kustomization: "resources: [cm.yaml]\npatchesStrategicMerge: [URL]\n"},
		{name: "patchesJson6902[].path", kustomization: "resources: [cm.yaml]\npatchesJson6902:\n- target: {version: v1, kind: ConfigMap, name: local}\n  path: URL\n"},
		{name: "replacements[].path", kustomization: "resources: [cm.yaml]\nreplacements:\n- path: URL\n"},
		{name: "crds", kustomization: "resources: [cm.yaml]\ncrds: [URL]\n"},
		{name: "configurations", kustomization: "resources: [cm.yaml]\nconfigurations: [URL]\n"},
		{name: "openapi.path", kustomization: "resources: [cm.yaml]\nopenapi:\n  path: URL\n"},
		{name: "configMapGenerator files", kustomization: "configMapGenerator:\n- name: x\n  files: [URL]\n"},
		{name: "configMapGenerator files with a key", kustomization: "configMapGenerator:\n- name: x\n  files: [\"key=URL\"]\n"},
		{name: "configMapGenerator envs", kustomization: "configMapGenerator:\n- name: x\n  envs: [URL]\n"},
		{name: "configMapGenerator env, the deprecated singular", kustomization: "configMapGenerator:\n- name: x\n  env: URL\n"},
		{name: "secretGenerator files", kustomization: "secretGenerator:\n- name: x\n  files: [URL]\n"},
		{name: "secretGenerator envs", kustomization: "secretGenerator:\n- name: x\n  envs: [URL]\n"},
		{name: "generators", kustomization: "generators: [URL]\n"},
		{name: "transformers", kustomization: "resources: [cm.yaml]\ntransformers: [URL]\n"},
		{name: "validators", kustomization: "resources: [cm.yaml]\nvalidators: [URL]\n"},
		{
			name: "a nested base", kustomization: "resources: [../base]\n",
			extra: map[string]string{"base/kustomization.yaml": "resources: [cm.yaml, URL]\n", "base/cm.yaml": cm},
		},
		{
			name: "the path of a PatchTransformer configured in a transformers file", kustomization: "resources: [cm.yaml]\ntransformers: [patch.yaml]\n",
			extra: map[string]string{"env/patch.yaml": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: URL\n"},
		},
		{
			name: "the files of a ConfigMapGenerator configured in a generators file", kustomization: "generators: [gen.yaml]\n",
			extra: map[string]string{"env/gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\nfiles: [URL]\n"},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := fmt.Sprintf("%s/case-%d.yaml", srv.URL, i)
			root, _ := sandbox(t)
			files := map[string]string{"env/kustomization.yaml": strings.ReplaceAll(tc.kustomization, "URL", url), "env/cm.yaml": cm}
			for path, content := range tc.extra {
				files[path] = strings.ReplaceAll(content, "URL", url)
			}
			writeTree(t, root, files)

			res, err := unscanned(t).Render(t.Context(), Request{Root: root, Path: "env"})
			assertRefusedRemote(t, res, err, url)
			assert.Zero(t, hits.Load(), "no request may reach the listener")
		})
	}
}

func TestRemoteRepositoriesAreRefusedByTheLoaderAndNeverCloned(t *testing.T) {
	srv, hits := countingServer(t)
	ran := fakeGit(t)
	refs := []string{
		"github.com/acme/ml-base?ref=v1.0.0",
		"GitHub.com/acme/ml-base",
		"git::" + srv.URL + "/repo.git//base",
		srv.URL + "/repo.git//base?ref=main",
		"ssh://git@example.com/acme/repo.git",
		"git@github.com:acme/repo.git",
		"git@github.com/acme/repo",
		"gh:acme/repo",
		"file:///tmp/repo.git",
		"-uhttps://example.com/x",
		"--upload-pack=touch /tmp/pwned",
	}
	for _, ref := range refs {
		t.Run(ref, func(t *testing.T) {
			root, _ := sandbox(t)
			writeTree(t, root, map[string]string{"env/kustomization.yaml": "resources:\n- " + quoteYAML(ref) + "\n"})
			res, err := unscanned(t).Render(t.Context(), Request{Root: root, Path: "env"})
			assertRefusedRemote(t, res, err, ref)
			assert.Contains(t, err.Error(), "env/kustomization.yaml", "the kustomization whose build asked for it")
		})
	}
	assert.Zero(t, hits.Load(), "no request may reach a remote")
	assert.False(t, ran(), "git was never run")
	_, err := os.Stat("/tmp/pwned")
	assert.True(t, os.IsNotExist(err), "nothing may be executed")
}

// TestLocalReferencesReachKustomizeAsPathsOnly checks the second line of the
// guard on its own: whatever isRemote misses, the "./" the loader adds keeps
// kustomize's file loader from cloning it.
func TestLocalReferencesReachKustomizeAsPathsOnly(t *testing.T) {
	srv, hits := countingServer(t)
	ran := fakeGit(t)
	fs, err := newBoundedFS(t.Context(), t.TempDir(), DefaultMaxFileBytes, DefaultMaxBuildBytes)
	require.NoError(t, err)
	root := newLoader(fs)
	assert.Equal(t, fs.root, root.Root(), "the root loader is the checkout")

	for _, ref := range []string{
		"github.com/acme/repo", "git@github.com:acme/repo.git", "git@github.com/acme/repo",
		"ssh://git@example.com/acme/repo.git", "git::" + srv.URL + "/repo.git", srv.URL + "/repo.git//base",
	} {
		_, err := root.inner.New(local(ref))
		assert.Error(t, err, ref)
		_, err = root.inner.Load(local(ref))
		assert.Error(t, err, ref)
	}
	assert.Zero(t, hits.Load())
	assert.False(t, ran(), "git was never run")
}

// fakeGit puts a git on PATH that records being run, and reports whether it was.
func fakeGit(t *testing.T) func() bool {
	t.Helper()
	bin := t.TempDir()
	marker := filepath.Join(bin, "ran")
	script := "#!/bin/sh\ntouch '" + marker + "'\nexit 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755))
	t.Setenv("PATH", bin)
	return func() bool {
		_, err := os.Stat(marker)
		return err == nil
	}
}

func TestAURLIsRefusedWithTheScanInPlaceToo(t *testing.T) {
	srv, hits := countingServer(t)
	root, _ := sandbox(t)
	url := srv.URL + "/cm.yaml"
	writeTree(t, root, map[string]string{"env/kustomization.yaml": "resources: [" + quoteYAML(url) + "]\n"})
	res, err := renderEnv(t, root)
	assertRefusedRemote(t, res, err, url)
	assert.Zero(t, hits.Load())
}
