package preview

import (
	"context"
	"reflect"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/object"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// builder previews the environments of one target.
type builder struct {
	r        renderer
	repo     Repository
	changes  *source.Changes
	base     *source.Tree
	head     *lazyTree
	revision string
	fork     bool
}

// environment previews one environment. It renders the merge base (a cache
// hit when the engine rendered the same content) to learn the files the
// environment reads; when the change touches none, the environment is
// Unchanged and its head is not rendered. Otherwise it renders the head and
// compares. Its error is ctx's, or the head's checkout failing; a render
// error is part of the preview.
func (b *builder) environment(ctx context.Context, env Environment) (promote.EnvironmentPreview, error) {
	out := promote.EnvironmentPreview{Name: env.Name, Path: env.Path}
	// The merge base shares the engine's cache entry (usually the same
	// content); the head has one of its own, so a preview never evicts what
	// the engine rendered.
	before, err := b.r.Render(ctx, render.Request{Root: b.base.Dir, Path: env.Path, Key: b.repo.Name + "/" + env.Name})
	if err != nil && render.IsTransient(err) {
		return out, err
	}
	if err != nil {
		out.BaseError = err.Error()
		before = &render.Result{}
	} else if !b.changes.All && !touches(b.changes.Paths, before.Inputs) {
		out.Unchanged = true
		out.Models = models(before, before)
		return out, nil
	}

	dir, err := b.head.dir(ctx)
	if err != nil {
		return out, err
	}
	after, err := b.r.Render(ctx, render.Request{Root: dir, Path: env.Path, Key: b.repo.Name + "/" + env.Name + "@preview"})
	if err != nil && render.IsTransient(err) {
		return out, err
	}
	if err != nil {
		out.RenderError = err.Error()
		out.Models = models(before, before)
		return out, nil
	}
	out.Models = models(before, after)
	out.Objects = objectChanges(object.Diff(before.Objects, after.Objects))
	out.Tests = testChanges(before.Tests, after.Tests)
	inv := apply.Inventory{Repository: b.repo.Name, Environment: env.Name}
	if env.Policy != nil {
		out.Policy = messages(env.Policy.Check(inv, after.Objects))
	}
	switch {
	case env.Cluster != nil && b.fork:
		out.Cluster = &promote.ClusterPreview{Skipped: "the pull request comes from a fork"}
	case env.Cluster != nil:
		cluster, err := clusterDiff(ctx, env, inv, b.revision, after.Objects)
		if err != nil {
			return out, err
		}
		out.Cluster = cluster
	}
	return out, nil
}

// clusterDiff dry-runs the head's objects against the live cluster. What
// the cluster refuses (or not answering) is part of the preview; only ctx
// ending is an error.
func clusterDiff(ctx context.Context, env Environment, inv apply.Inventory, revision string, objs []*unstructured.Unstructured) (*promote.ClusterPreview, error) {
	diffs, err := env.Cluster.Diff(ctx, apply.Request{Inventory: inv, Revision: revision, Objects: objs, Policy: env.Policy})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	out := &promote.ClusterPreview{}
	if err != nil {
		out.Error = err.Error()
	}
	for _, d := range diffs {
		if d.Action != apply.Unchanged {
			out.Objects = append(out.Objects, promote.ObjectChange{Ref: d.Ref.String(), Action: string(d.Action), Diff: d.Diff})
		}
	}
	return out, nil
}

// touches reports whether any changed path is one of inputs (sorted).
func touches(changed, inputs []string) bool {
	for _, p := range changed {
		if _, ok := slices.BinarySearch(inputs, p); ok {
			return true
		}
	}
	return false
}

// models pairs each model's version before and after, in the order of
// after, then the models removed.
func models(before, after *render.Result) []promote.ModelChange {
	key := func(m *render.Model) string { return m.Namespace + "/" + m.Name }
	old := make(map[string]string, len(before.Models))
	for _, m := range before.Models {
		old[key(m)] = m.Spec.Version
	}
	var out []promote.ModelChange
	seen := map[string]bool{}
	for _, m := range after.Models {
		seen[key(m)] = true
		out = append(out, promote.ModelChange{Name: m.Name, Before: old[key(m)], After: m.Spec.Version})
	}
	for _, m := range before.Models {
		if !seen[key(m)] {
			out = append(out, promote.ModelChange{Name: m.Name, Before: m.Spec.Version})
		}
	}
	return out
}

func objectChanges(changes []object.Change) []promote.ObjectChange {
	out := make([]promote.ObjectChange, len(changes))
	for i, c := range changes {
		out[i] = promote.ObjectChange{Ref: c.Ref, Action: string(c.Action), Diff: c.Diff}
	}
	return out
}

// testChanges lists the tests added, changed and removed. A test is its
// definition: the version and artifact it exercises change with every
// model bump and are left out.
func testChanges(before, after []render.Test) []promote.TestChange {
	type id struct{ ns, model, name string }
	definition := func(t render.Test) render.Test {
		return render.Test{Name: t.Name, Image: t.Image, Command: t.Command, Args: t.Args, Env: t.Env, Timeout: t.Timeout}
	}
	old := make(map[id]render.Test, len(before))
	for _, t := range before {
		old[id{t.Namespace, t.Model, t.Name}] = t
	}
	var out []promote.TestChange
	seen := map[id]bool{}
	for _, t := range after {
		k := id{t.Namespace, t.Model, t.Name}
		seen[k] = true
		prev, existed := old[k]
		switch {
		case !existed:
			out = append(out, promote.TestChange{Model: t.Model, Name: t.Name, Action: promote.Added})
		case !reflect.DeepEqual(definition(prev), definition(t)):
			out = append(out, promote.TestChange{Model: t.Model, Name: t.Name, Action: promote.Changed})
		}
	}
	for _, t := range before {
		if !seen[id{t.Namespace, t.Model, t.Name}] {
			out = append(out, promote.TestChange{Model: t.Model, Name: t.Name, Action: promote.Removed})
		}
	}
	return out
}

// messages splits an error joined by errors.Join into its messages.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range joined.Unwrap() {
		out = append(out, e.Error())
	}
	return out
}
