package render

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/object"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func newRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := New(Options{})
	require.NoError(t, err)
	return r
}

// TestGolden renders each environment of testdata/modelrepo and compares the
// YAML with <env>.want.yaml beside it. Regenerate with: go test ./render -update
func TestGolden(t *testing.T) {
	cases := []struct{ name, env string }{
		{"dev pins both models, generates a ConfigMap, turns the HPA off and serves sentiment with KServe", "environments/dev"},
		{"staging pins fraud-detector and adds a component", "environments/staging"},
		{"prod turns the HPA on, splits canary traffic and orders the CRD before its custom resource", "environments/prod"},
	}
	root := filepath.Join("testdata", "modelrepo")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := newRenderer(t).Render(t.Context(), Request{Root: root, Path: tc.env})
			require.NoError(t, err)
			got, err := YAML(res.Objects)
			require.NoError(t, err)

			golden := filepath.Join("testdata", "golden", filepath.Base(tc.env)+".want.yaml")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file: run go test ./render -update")
			assert.Equal(t, string(want), string(got))
		})
	}
}

func TestRenderIsByteForByteStable(t *testing.T) {
	root := filepath.Join("testdata", "modelrepo")
	a, err := newRenderer(t).Render(t.Context(), Request{Root: root, Path: "environments/prod"})
	require.NoError(t, err)
	b, err := newRenderer(t).Render(t.Context(), Request{Root: root, Path: "environments/prod"})
	require.NoError(t, err)
	ya, _ := YAML(a.Objects)
	yb, _ := YAML(b.Objects)
	assert.Equal(t, ya, yb)
	assert.Equal(t, a.Digest, b.Digest)
	assert.True(t, strings.HasPrefix(a.Digest, "sha256:"))
}

func TestApplyOrderPutsNamespacesThenCRDsThenClusterScopedThenNamespaced(t *testing.T) {
	res, err := newRenderer(t).Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/prod"})
	require.NoError(t, err)
	var kinds []string
	for _, o := range res.Objects {
		kinds = append(kinds, o.GetKind())
	}
	require.GreaterOrEqual(t, len(kinds), 3)
	assert.Equal(t, []string{"Namespace", "CustomResourceDefinition"}, kinds[:2])
	for _, o := range res.Objects[2:] {
		assert.NotEmpty(t, o.GetNamespace(), "%s must come after cluster-scoped objects", object.String(o))
	}
}

func TestInputsListEveryFileTheBuildReadAndNothingElse(t *testing.T) {
	res, err := newRenderer(t).Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/dev"})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"environments/dev/kustomization.yaml",
		"environments/dev/models.yaml",
		"environments/dev/namespace.yaml",
		"environments/dev/thresholds.properties",
		"models/fraud-detector/kustomization.yaml",
		"models/fraud-detector/model.yaml",
		"models/sentiment/kustomization.yaml",
		"models/sentiment/model.yaml",
	}, res.Inputs)
}

func TestModelsAreExpandedNotAppliedAndTheirTestsAreSeparate(t *testing.T) {
	res, err := newRenderer(t).Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/dev"})
	require.NoError(t, err)
	for _, o := range res.Objects {
		assert.NotEqual(t, ModelKind, o.GetKind())
		assert.NotEqual(t, "Job", o.GetKind(), "tests are run by verify, never applied with the environment")
	}
	require.Len(t, res.Models, 2)
	assert.Equal(t, "1.4.0", res.Models[0].Spec.Version, "the environment's pin wins over the base")
	require.Len(t, res.Tests, 2)
	assert.Equal(t, "fraud-detector", res.Tests[0].Model)
	assert.Equal(t, "smoke", res.Tests[0].Name)
	assert.Equal(t, "1.4.0", res.Tests[0].Version)
	assert.Equal(t, "ml-dev", res.Tests[0].Namespace)
	assert.Equal(t, "5m0s", res.Tests[0].Timeout.String())
	assert.Equal(t, "10m0s", res.Tests[1].Timeout.String(), "the default timeout")
}
