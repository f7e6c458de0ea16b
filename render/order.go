package render

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-gitops/ferry/internal/object"
)

const modelGroup = "ferry.dev"

// applyGroup ranks an object for applying: Namespaces, then CRDs (as
// object.Rank has it), then other objects without a namespace
// (cluster-scoped), then namespaced ones.
func applyGroup(o *unstructured.Unstructured) int {
	rank := object.Rank(o.GroupVersionKind().Group, o.GetKind())
	if !object.IsEarly(o.GroupVersionKind().Group, o.GetKind()) && o.GetNamespace() != "" {
		rank++
	}
	return rank
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
	if i, dup := object.FirstDuplicate(objs); dup {
		return fmt.Errorf("%s: declared twice (a manifest may collide with an object a Model generates); rename one", object.String(objs[i]))
	}
	return nil
}

// modelSources returns the input files that declare or patch the Model obj,
// in the order the build read them (so the declaring file comes first).
// Files are re-read with readBounded: they are inputs already, and an error
// report must not count against the build's byte limit.
func modelSources(fs *boundedFS, obj *unstructured.Unstructured) []string {
	var files []string
	for _, path := range fs.readOrder() {
		if !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
			continue
		}
		_, data, err := fs.readBounded(path)
		if err != nil {
			continue
		}
		docs, err := decodeStream(data)
		if err != nil {
			continue
		}
		for _, doc := range docs {
			if doc.GetKind() == ModelKind && doc.GetName() == obj.GetName() {
				files = append(files, path)
				break
			}
		}
	}
	return files
}
