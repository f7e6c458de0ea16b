package render

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"slices"
	_ "unsafe" // for go:linkname, see kustTarget below

	"sigs.k8s.io/kustomize/api/builtins"
	"sigs.k8s.io/kustomize/api/ifc"
	"sigs.k8s.io/kustomize/api/konfig"
	_ "sigs.k8s.io/kustomize/api/krusty" // links the internal packages the go:linkname declarations resolve to
	"sigs.k8s.io/kustomize/api/provenance"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// kustomize runs one build of path (relative to the checkout) under the build
// slot, and turns a panic inside kustomize into an error.
//
// Builds run one at a time because kustomize is not safe for concurrent use
// (kubernetes-sigs/kustomize#3659; openapi.SetSchema alone sets a package
// global). Waiting for the slot is bounded by ctx: a render whose ctx ends
// while it waits returns at once and never starts its build. A build runs on
// its own goroutine so that ctx also bounds the wait for its result; one
// nobody waits for any more keeps the slot until it ends: at its next file
// access (boundedFS refuses every access once ctx has ended), its work
// between accesses bounded by the MaxBuildBytes it may read.
//
// Errors caused by ctx wrap ctx.Err(), so IsTransient reports them.
func (r *Renderer) kustomize(ctx context.Context, fs *boundedFS, path string) (resmap.ResMap, error) {
	dir := filepath.Join(fs.root, filepath.FromSlash(path))
	if !fs.IsDir(dir) {
		if err := fs.stopped(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s is not a directory in the checkout", path)
	}
	if err := r.scan(fs, dir); err != nil {
		return nil, err
	}

	select {
	case r.build <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the kustomize build slot: %w", ctx.Err())
	}
	if err := ctx.Err(); err != nil { // both were ready and select chose the slot
		<-r.build
		return nil, fmt.Errorf("wait for the kustomize build slot: %w", err)
	}

	type outcome struct {
		m   resmap.ResMap
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() { <-r.build }() // when kustomize returns, waited for or not
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("kustomize panicked: %v\n%s", p, debug.Stack())}
			}
		}()
		m, err := r.run(fs, path)
		done <- outcome{m, err}
	}()
	select {
	case o := <-done:
		if err := ctx.Err(); err != nil {
			// The build's error, if any, is most likely the file system
			// refusing to go on; either way its result is not wanted.
			return nil, fmt.Errorf("kustomize build: %w", err)
		}
		return o.m, o.err
	case <-ctx.Done():
		return nil, fmt.Errorf("kustomize build: %w", ctx.Err())
	}
}

// runKustomize is ferry's copy of krusty's Kustomizer.Run (kustomize/api
// v0.21.2, krusty/kustomizer.go). Ferry has its own because krusty builds its
// loader itself, from kustomize's file loader, which fetches http(s) URLs and
// clones git repositories before any file system hook is consulted; krusty
// offers no way to replace it. This copy hands kustomize ferry's loader
// (loader.go) instead, so that no URL is ever loaded, whatever field names it.
//
// It builds path, relative to the checkout, with only builtin plugins (no
// exec, Go or KRM function plugins, no Helm) and loads restricted to each
// kustomization's directory. As krusty does, it sets the OpenAPI schema,
// adds the managed-by label when buildMetadata asks for it, and removes the
// build, origin and transformer annotations unless buildMetadata keeps them.
//
// Unlike krusty it does not apply sortOptions: the sort transformer is
// internal to kustomize, and Render orders every result itself (sortForApply),
// so kustomize's order never reaches a Result.
//
// Its error is, in order of precedence: the loader's refusal of a URL or
// remote base (even when kustomize carried on without it), the file system's
// reason for stopping (ctx ended, MaxBuildBytes passed, even when kustomize
// returned a result), then kustomize's own.
func runKustomize(fs *boundedFS, path string) (resmap.ResMap, error) {
	root := newLoader(fs)
	m, err := buildWith(root, fs, path)
	if refused := root.refusal(); refused != nil {
		return nil, refused
	}
	// Exists and IsDir answer false once fs has stopped, which kustomize may
	// take for an answer: a build that saw a stopped fs is no result.
	if stop := fs.stopped(); stop != nil {
		return nil, stop
	}
	return m, err
}

func buildWith(root *loader, fs *boundedFS, path string) (resmap.ResMap, error) {
	var ldr ifc.Loader = root
	if path != "." {
		env, err := root.New(path)
		if err != nil {
			return nil, err
		}
		ldr = env
	}
	defer ldr.Cleanup()

	deps := provider.NewDepProvider()
	factory := resmap.NewFactory(deps.GetResourceFactory())
	// Plugins resolve against fs too: with only builtins allowed, kustomize
	// never reaches for a plugin file, and if it did it could not leave the checkout.
	kt := newKustTarget(ldr, deps.GetFieldValidator(), factory, newPluginLoader(types.DisabledPluginConfig(), factory, fs))
	if err := kustTargetLoad(kt); err != nil {
		return nil, err
	}
	k := kustTargetKustomization(kt)
	var schema []byte
	if p, ok := k.OpenAPI["path"]; ok {
		var err error
		if schema, err = ldr.Load(p); err != nil {
			return nil, err
		}
	}
	if err := openapi.SetSchema(k.OpenAPI, schema, true); err != nil {
		return nil, err
	}
	m, err := kustTargetMakeCustomizedResMap(kt)
	if err != nil {
		return nil, err
	}

	if slices.Contains(k.BuildMetadata, types.ManagedByLabelOption) {
		t := builtins.LabelTransformerPlugin{
			Labels:     map[string]string{konfig.ManagedbyLabelKey: "kustomize-" + provenance.GetProvenance().Semver()},
			FieldSpecs: []types.FieldSpec{{Path: "metadata/labels", CreateIfNotPresent: true}},
		}
		if err := t.Transform(m); err != nil {
			return nil, err
		}
	}
	m.RemoveBuildAnnotations()
	if !slices.Contains(k.BuildMetadata, types.OriginAnnotations) {
		if err := m.RemoveOriginAnnotations(); err != nil {
			return nil, fmt.Errorf("clean up origin annotations: %w", err)
		}
	}
	if !slices.Contains(k.BuildMetadata, types.TransformerAnnotations) {
		if err := m.RemoveTransformerAnnotations(); err != nil {
			return nil, fmt.Errorf("clean up transformer annotations: %w", err)
		}
	}
	return m, nil
}

// kustTarget and pluginLoader stand for *target.KustTarget and
// *loader.Loader of kustomize/api's internal packages, which Go does not let
// ferry import; they are only ever handled as pointers.
//
// The declarations below reach those packages with go:linkname: krusty's Run
// is built from them, and they are the only way to build with a loader of
// ferry's (see runKustomize). The signatures are those of kustomize/api
// v0.21.2 (internal/target/kusttarget.go, internal/plugins/loader/loader.go).
// Nothing checks them at compile time: TestTheKustomizeInternalsAreTheVerifiedVersion
// fails when go.mod moves kustomize/api, so that they are checked again.
type (
	kustTarget   struct{}
	pluginLoader struct{}
)

const verifiedKustomizeAPI = "v0.21.2"

//go:linkname newKustTarget sigs.k8s.io/kustomize/api/internal/target.NewKustTarget
func newKustTarget(ldr ifc.Loader, validator ifc.Validator, rFactory *resmap.Factory, pLdr *pluginLoader) *kustTarget

//go:linkname kustTargetLoad sigs.k8s.io/kustomize/api/internal/target.(*KustTarget).Load
func kustTargetLoad(kt *kustTarget) error

//go:linkname kustTargetKustomization sigs.k8s.io/kustomize/api/internal/target.(*KustTarget).Kustomization
func kustTargetKustomization(kt *kustTarget) types.Kustomization

//go:linkname kustTargetMakeCustomizedResMap sigs.k8s.io/kustomize/api/internal/target.(*KustTarget).MakeCustomizedResMap
func kustTargetMakeCustomizedResMap(kt *kustTarget) (resmap.ResMap, error)

//go:linkname newPluginLoader sigs.k8s.io/kustomize/api/internal/plugins/loader.NewLoader
func newPluginLoader(pc *types.PluginConfig, rf *resmap.Factory, fs filesys.FileSystem) *pluginLoader
