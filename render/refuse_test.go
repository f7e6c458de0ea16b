package render

import (
	"context"
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

// canary is the content of files outside the checkout: it must never appear
// in a render's output or error.
const canary = "OUTSIDE-CANARY-7f3a"

// writeTree writes files (slash paths relative to dir) and returns dir.
func writeTree(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for path, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(path))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	return dir
}

// sandbox returns a checkout root inside a directory that also holds files
// outside it, full of the canary.
func sandbox(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	outside = writeTree(t, filepath.Join(base, "outside"), map[string]string{
		"kustomization.yaml": "resources: [cm.yaml]\n",
		"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\ndata: {secret: " + canary + "}\n",
		"secret.properties":  "secret=" + canary + "\n",
	})
	root = filepath.Join(base, "repo")
	require.NoError(t, os.MkdirAll(root, 0o755))
	return root, outside
}

func renderEnv(t *testing.T, root string) (*Result, error) {
	t.Helper()
	return newRenderer(t).Render(t.Context(), Request{Root: root, Path: "env"})
}

func assertRefused(t *testing.T, res *Result, err error, mentions ...string) {
	t.Helper()
	require.Error(t, err)
	assert.Nil(t, res, "a refused render has no output")
	for _, m := range mentions {
		assert.Contains(t, err.Error(), m)
	}
	assert.NotContains(t, err.Error(), canary, "no byte of an outside file may appear in the error")
}

func TestPathsThatLeaveTheCheckoutAreRefused(t *testing.T) {
	cases := []struct {
		name  string
		kust  func(outside string) string
		setup func(t *testing.T, root, outside string)
		want  []string
	}{
		{
			name: "a base reached through ..",
			kust: func(string) string { return "resources: [../../outside]\n" },
			want: []string{"env/kustomization.yaml", "resources[0]", "../../outside", "leaves the repository"},
		},
		{
			name: "a base given as an absolute path",
			kust: func(outside string) string { return "resources: [" + outside + "]\n" },
			want: []string{"env/kustomization.yaml", "resources[0]", "leaves the repository"},
		},
		{
			name: "a directory symlink pointing outside",
			kust: func(string) string { return "resources: [link]\n" },
			setup: func(t *testing.T, root, outside string) {
				require.NoError(t, os.Symlink(outside, filepath.Join(root, "env", "link")))
			},
			want: []string{"env/kustomization.yaml", "resources[0]", `"link"`, "leaves the repository"},
		},
		{
			name: "a generator file symlinked outside",
			kust: func(string) string {
				return "configMapGenerator:\n- name: x\n  files: [secret.properties]\n"
			},
			setup: func(t *testing.T, root, outside string) {
				require.NoError(t, os.Symlink(filepath.Join(outside, "secret.properties"), filepath.Join(root, "env", "secret.properties")))
			},
			want: []string{"env/kustomization.yaml", "configMapGenerator[0].files[0]", "secret.properties", "leaves the repository"},
		},
		{
			name: "a patch reached through ..",
			kust: func(string) string { return "resources: []\npatches:\n- path: ../../outside/cm.yaml\n" },
			want: []string{"env/kustomization.yaml", "patches[0].path", "leaves the repository"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := sandbox(t)
			writeTree(t, root, map[string]string{"env/kustomization.yaml": tc.kust(outside)})
			if tc.setup != nil {
				tc.setup(t, root, outside)
			}
			res, err := renderEnv(t, root)
			assertRefused(t, res, err, tc.want...)
		})
	}
}

func quoteYAML(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func TestKRMFunctionsAndHelmAreRefused(t *testing.T) {
	cases := map[string]struct {
		files map[string]string
		want  []string
	}{
		"an exec function in a transformer file": {
			files: map[string]string{
				"env/kustomization.yaml": "transformers: [fn.yaml]\n",
				"env/fn.yaml": "apiVersion: example.com/v1\nkind: Evil\nmetadata:\n  name: x\n  annotations:\n" +
					"    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
			},
			want: []string{"env/kustomization.yaml", "transformers[0]", "KRM functions"},
		},
		"a container function inline in generators": {
			files: map[string]string{
				"env/kustomization.yaml": "generators:\n- |\n  apiVersion: example.com/v1\n  kind: Gen\n  metadata:\n    name: x\n    annotations:\n" +
					"      config.kubernetes.io/function: |\n        container:\n          image: evil:1\n",
			},
			want: []string{"env/kustomization.yaml", "generators[0]", "KRM functions"},
		},
		"a Helm chart": {
			files: map[string]string{
				"env/kustomization.yaml": "helmCharts:\n- name: redis\n  repo: https://charts.example.com\n  version: 1.0.0\n",
			},
			want: []string{"env/kustomization.yaml", "helmCharts", "Helm chart inflation is off"},
		},
		"a legacy exec plugin": {
			files: map[string]string{
				"env/kustomization.yaml": "generators: [plugin.yaml]\n",
				"env/plugin.yaml":        "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata: {name: x}\n",
			},
			want: []string{"plugin"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root, _ := sandbox(t)
			writeTree(t, root, tc.files)
			res, err := renderEnv(t, root)
			assertRefused(t, res, err, tc.want...)
		})
	}
}

func TestAKustomizationCycleEndsWithAnErrorNamingIt(t *testing.T) {
	root, _ := sandbox(t)
	writeTree(t, root, map[string]string{
		"env/kustomization.yaml": "resources: [../a]\n",
		"a/kustomization.yaml":   "resources: [../b]\n",
		"b/kustomization.yaml":   "resources: [../a]\n",
	})
	res, err := renderEnv(t, root)
	assertRefused(t, res, err, "cycle", "a -> b -> a")
}

func TestAYAMLAliasBombEndsInBoundedTime(t *testing.T) {
	root, _ := sandbox(t)
	bomb := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n" +
		"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		bomb += n + ": &" + n + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n"
		prev = n
	}
	bomb += "data: {x: *" + prev + "}\n"
	writeTree(t, root, map[string]string{"env/kustomization.yaml": "resources: [bomb.yaml]\n", "env/bomb.yaml": bomb})

	// No deadline: the refusal must come from the alias check, not from a timeout.
	res, err := newRenderer(t).Render(t.Context(), Request{Root: root, Path: "env"})
	assertRefused(t, res, err, "env/bomb.yaml", "aliases expand")
}

func TestACancelledContextStopsTheBuildMidway(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := newRenderer(t)
	var reads atomic.Int64
	var readBeforeCancel int
	built := make(chan error, 1)
	var fsOfBuild *boundedFS
	r.run = func(fs *boundedFS, path string) (resmap.ResMap, error) {
		fsOfBuild = fs
		// The build's third read cancels: kustomize has loaded the
		// environment's kustomization and is reading what it names.
		fs.beforeRead = func(string) {
			if reads.Add(1) == 3 {
				readBeforeCancel = len(fs.inputs())
				cancel()
			}
		}
		m, err := runKustomize(fs, path)
		built <- err
		return m, err
	}
	res, err := r.Render(ctx, Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/dev"})
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, IsTransient(err))
	assert.Nil(t, res)

	select {
	case buildErr := <-built:
		require.ErrorIs(t, buildErr, context.Canceled, "the build itself stopped on the cancelled context")
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled build did not stop")
	}
	assert.GreaterOrEqual(t, reads.Load(), int64(3), "the build had started reading")
	assert.Len(t, fsOfBuild.inputs(), readBeforeCancel, "no file was read once the context was cancelled")

	select {
	case r.build <- struct{}{}:
		<-r.build
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled build kept the build slot")
	}
	r.run = runKustomize
	_, err = r.Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/staging"})
	assert.NoError(t, err, "the next render builds")
}

func TestAPanicInsideKustomizeBecomesAnError(t *testing.T) {
	r := newRenderer(t)
	r.run = func(*boundedFS, string) (resmap.ResMap, error) { panic("boom") }
	res, err := r.Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/dev"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kustomize panicked: boom")
	assert.Nil(t, res)

	// The build lock was released: the next render works.
	r.run = runKustomize
	_, err = r.Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/staging"})
	assert.NoError(t, err)
}

func TestAnEnvironmentPathOutsideTheCheckoutIsRefused(t *testing.T) {
	for _, p := range []string{"../elsewhere", "/etc", "env/../../x"} {
		_, err := newRenderer(t).Render(t.Context(), Request{Root: t.TempDir(), Path: p})
		require.Error(t, err, p)
		assert.Contains(t, err.Error(), "inside it")
	}
}
