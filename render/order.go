package render

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const modelGroup = "ferry.dev"

// objectRef formats an object as Kind/namespace/name (Kind/name when cluster-scoped),
// the one form every error in Ferry leads with.
func objectRef(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + "/" + ns + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetName()
}

// applyGroup ranks an object for applying: Namespaces, then CRDs, then other
// objects without a namespace (cluster-scoped), then namespaced ones.
func applyGroup(o *unstructured.Unstructured) int {
	switch {
	case o.GetKind() == "Namespace" && o.GroupVersionKind().Group == "":
		return 0
	case o.GetKind() == "CustomResourceDefinition" && o.GroupVersionKind().Group == "apiextensions.k8s.io":
		return 1
	case o.GetNamespace() == "":
		return 2
	default:
		return 3
	}
}

// sortForApply orders objects by group, then kind, namespace and name.
func sortForApply(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return cmp.Or(
			cmp.Compare(applyGroup(a), applyGroup(b)),
			cmp.Compare(a.GetKind(), b.GetKind()),
			cmp.Compare(a.GetNamespace(), b.GetNamespace()),
			cmp.Compare(a.GetName(), b.GetName()),
			cmp.Compare(a.GetAPIVersion(), b.GetAPIVersion()),
		)
	})
}

func sortModels(models []*Model) {
	slices.SortFunc(models, func(a, b *Model) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// checkDuplicates refuses two objects with the same identity, typically a
// manifest that collides with what a Model generates.
func checkDuplicates(objs []*unstructured.Unstructured) error {
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		key := o.GroupVersionKind().GroupKind().String() + "/" + o.GetNamespace() + "/" + o.GetName()
		if seen[key] {
			return fmt.Errorf("%s: declared twice (a manifest may collide with an object a Model generates); rename one", objectRef(o))
		}
		seen[key] = true
	}
	return nil
}

// modelSources returns the input files that declare or patch the Model obj,
// in the order the build read them (so the declaring file comes first).
func modelSources(fs *boundedFS, obj *unstructured.Unstructured) []string {
	var files []string
	for _, path := range fs.readOrder() {
		if !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
			continue
		}
		data, err := fs.ReadFile(path)
		if err != nil {
			continue
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			var head struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if yaml.Unmarshal([]byte(doc), &head) == nil && head.Kind == ModelKind && head.Metadata.Name == obj.GetName() {
				files = append(files, path)
				break
			}
		}
	}
	return files
}
