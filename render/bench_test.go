package render

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// benchTree writes an environment of n objects: n-2 ConfigMaps in a base plus
// one Model (a Deployment and a Service) when withModel, else n ConfigMaps.
func benchTree(b *testing.B, n int, withModel bool) string {
	b.Helper()
	root := b.TempDir()
	var res []string
	cms := n
	if withModel {
		cms = n - 2
	}
	files := map[string]string{}
	for i := range cms {
		name := fmt.Sprintf("cm-%04d.yaml", i)
		files["base/"+name] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n  key: value-%d\n", i, i)
		res = append(res, name)
	}
	if withModel {
		files["base/model.yaml"] = validModel
		res = append(res, "model.yaml")
	}
	files["base/kustomization.yaml"] = "resources:\n- " + strings.Join(res, "\n- ") + "\n"
	// The shape of a Ferry environment (DESIGN.md section 1): a namespace,
	// the bases, and a patch file of pins.
	files["env/kustomization.yaml"] = "namespace: bench\nresources: [../base]\npatches:\n- path: pins.yaml\n"
	files["env/pins.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-0000\ndata:\n  key: pinned\n"
	for path, content := range files {
		full := filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// BenchmarkRender compares an in-process build (cache off: a new Renderer per
// build) with one `kustomize build` process per build on the same overlay, and
// measures a cache hit. Run: go test ./render -run '^$' -bench Render -benchtime 3s
func BenchmarkRender(b *testing.B) {
	kustomize, err := testenv.Binary("kustomize")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"small-10", 10}, {"large-1000", 1000}} {
		plain := benchTree(b, size.n, false)
		withModel := benchTree(b, size.n, true)

		b.Run(size.name+"/in-process", func(b *testing.B) {
			for b.Loop() {
				r, _ := New(Options{})
				if _, err := r.Render(b.Context(), Request{Root: plain, Path: "env"}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/in-process-with-model", func(b *testing.B) {
			for b.Loop() {
				r, _ := New(Options{})
				if _, err := r.Render(b.Context(), Request{Root: withModel, Path: "env"}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/kustomize-process", func(b *testing.B) {
			for b.Loop() {
				if out, err := exec.Command(kustomize, "build", filepath.Join(plain, "env")).CombinedOutput(); err != nil {
					b.Fatal(err, string(out))
				}
			}
		})
		b.Run(size.name+"/cache-hit", func(b *testing.B) {
			r, _ := New(Options{})
			if _, err := r.Render(b.Context(), Request{Root: withModel, Path: "env"}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := r.Render(b.Context(), Request{Root: withModel, Path: "env"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
