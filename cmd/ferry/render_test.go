package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// TestRenderMatchesTheKustomizeCLI checks that, for a directory without
// Models, `ferry render` prints what `kustomize build` (the CLI built by the
// tools script) prints, object for object.
func TestRenderMatchesTheKustomizeCLI(t *testing.T) {
	kustomize, err := testenv.Binary("kustomize")
	require.NoError(t, err)
	dir := filepath.Join("testdata", "plain", "overlay")

	want, err := exec.Command(kustomize, "build", dir).Output()
	require.NoError(t, err)

	var got, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"render", "--root", filepath.Join("testdata", "plain"), dir}, &got, &stderr), stderr.String())

	wantObjs, gotObjs := objectsByID(t, want), objectsByID(t, got.Bytes())
	require.NotEmpty(t, wantObjs)
	assert.Equal(t, sortedKeys(wantObjs), sortedKeys(gotObjs))
	for id, w := range wantObjs {
		assert.Equal(t, w, gotObjs[id], id)
	}
}

func TestRenderInputsListsTheFilesRead(t *testing.T) {
	var out, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"render", "--inputs", "--root", "testdata/plain", "testdata/plain/overlay"}, &out, &stderr))
	assert.Equal(t, strings.Join([]string{
		"base/deployment.yaml", "base/kustomization.yaml", "base/service.yaml",
		"component/kustomization.yaml",
		"overlay/kustomization.yaml", "overlay/namespace.yaml", "overlay/resources.yaml",
	}, "\n")+"\n", out.String())
}

func TestRenderOutsideTheRootIsAnError(t *testing.T) {
	var out, stderr bytes.Buffer
	err := run(t.Context(), []string{"render", "--root", "testdata/plain/overlay", "testdata/plain/base"}, &out, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not inside the checkout root")
	assert.Empty(t, out.String())
}

func objectsByID(t *testing.T, stream []byte) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	for _, doc := range strings.Split(string(stream), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o))
		meta, _ := o["metadata"].(map[string]any)
		objs[o["kind"].(string)+"/"+str(meta["namespace"])+"/"+str(meta["name"])] = o
	}
	return objs
}

func str(v any) string { s, _ := v.(string); return s }

func sortedKeys(m map[string]map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
