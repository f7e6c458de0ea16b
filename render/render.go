package render

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/lru"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Options configures a Renderer. The zero value is usable.
type Options struct {
	// MaxFileBytes caps the size of any one file a build reads; 0 means 8 MiB.
	MaxFileBytes int64
	// CacheEntries bounds how many environments' results are kept; 0 means 256.
	CacheEntries int
}

// Request names what to render.
type Request struct {
	// Root is the checkout; nothing outside it is read.
	Root string
	// Path is the environment directory, relative to Root (e.g. environments/dev).
	Path string
}

// Result is a rendered environment. A Result may be shared by later Render
// calls with identical inputs: treat it as read-only and DeepCopy an object
// before changing it.
type Result struct {
	// Objects are what to apply, in apply order: Namespaces, then
	// CustomResourceDefinitions, then other cluster-scoped objects, then
	// namespaced ones, each group sorted by kind, namespace and name.
	// Model objects are expanded, never included themselves.
	Objects []*unstructured.Unstructured
	// Models are the environment's Models after patches, sorted by namespace and name.
	Models []*Model
	// Tests are the Models' tests, for the verify step; never applied here.
	Tests []Test
	// Digest is "sha256:<hex>" of Objects and Tests; equal digests mean equal output.
	Digest string
	// Inputs are the files the build read, slash paths relative to Root, sorted.
	Inputs []string
}

// Renderer builds environments with kustomize in-process and remembers results
// by the content of their inputs. It is safe for concurrent use; kustomize
// builds themselves run one at a time (kubernetes-sigs/kustomize#3659).
type Renderer struct {
	maxFile int64
	build   sync.Mutex
	cache   *lru.Cache // Request.Path -> *cached
	// run is the kustomize build; tests replace it to exercise panics.
	run func(fs filesys.FileSystem, dir string) (resmap.ResMap, error)
}

type cached struct {
	hashes map[string]string // input path -> sha256 of its content
	result *Result
}

// New returns a Renderer.
func New(opts Options) (*Renderer, error) {
	if opts.MaxFileBytes < 0 || opts.CacheEntries < 0 {
		return nil, errors.New("render: MaxFileBytes and CacheEntries must not be negative")
	}
	if opts.MaxFileBytes == 0 {
		opts.MaxFileBytes = 8 << 20
	}
	if opts.CacheEntries == 0 {
		opts.CacheEntries = 256
	}
	return &Renderer{maxFile: opts.MaxFileBytes, cache: lru.New(opts.CacheEntries), run: runKustomize}, nil
}

// runKustomize builds dir with plugins, Helm and load outside the
// kustomization root all off (krusty's defaults, stated here so they stay so).
func runKustomize(fs filesys.FileSystem, dir string) (resmap.ResMap, error) {
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	return krusty.MakeKustomizer(opts).Run(fs, dir)
}

// Render builds one environment. It returns a cached Result, without running
// kustomize, when every input file has the same content as last time. Errors
// name the environment and, where there is one, the file and field at fault;
// a cancelled ctx stops the build at its next file access.
func (r *Renderer) Render(ctx context.Context, req Request) (*Result, error) {
	path := filepath.ToSlash(filepath.Clean(req.Path))
	if filepath.IsAbs(req.Path) || path == ".." || strings.HasPrefix(path, "../") {
		return nil, fmt.Errorf("render %s: the environment path must be relative to the checkout and inside it", req.Path)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	fs, err := newBoundedFS(ctx, req.Root, r.maxFile)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	if res, ok := r.lookup(fs, path); ok {
		return res, nil
	}

	resources, err := r.kustomize(ctx, fs, path)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	res, err := assemble(resources, fs)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	res.Inputs = fs.inputs()
	r.cache.Add(path, &cached{hashes: fs.hashes(), result: res})
	return res, nil
}

// lookup returns the cached result for path when all its inputs are unchanged.
func (r *Renderer) lookup(fs *boundedFS, path string) (*Result, bool) {
	v, ok := r.cache.Get(path)
	if !ok {
		return nil, false
	}
	c := v.(*cached)
	for file, want := range c.hashes {
		_, data, err := fs.readBounded(file)
		if err != nil || hashBytes(data) != want {
			return nil, false
		}
	}
	return c.result, true
}

// kustomize runs the build on its own goroutine so that ctx bounds the wait,
// and turns a panic inside kustomize into an error.
func (r *Renderer) kustomize(ctx context.Context, fs *boundedFS, path string) (resmap.ResMap, error) {
	dir := filepath.Join(fs.root, filepath.FromSlash(path))
	if !fs.IsDir(dir) {
		return nil, fmt.Errorf("%s is not a directory in the checkout", path)
	}
	if err := scanKustomizations(fs, dir); err != nil {
		return nil, err
	}

	type outcome struct {
		m   resmap.ResMap
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r.build.Lock()
		defer r.build.Unlock()
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("kustomize panicked: %v\n%s", p, debug.Stack())}
			}
		}()
		m, err := r.run(fs, dir)
		done <- outcome{m, err}
	}()
	select {
	case o := <-done:
		return o.m, o.err
	case <-ctx.Done():
		return nil, fmt.Errorf("kustomize build: %w", ctx.Err())
	}
}

// assemble expands Models, orders objects and computes the digest.
func assemble(m resmap.ResMap, fs *boundedFS) (*Result, error) {
	res := &Result{}
	var errs []error
	var plain []*unstructured.Unstructured
	for _, r := range m.Resources() {
		content, err := r.Map()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.CurId(), err))
			continue
		}
		obj := &unstructured.Unstructured{Object: content}
		gvk := obj.GroupVersionKind()
		if gvk.Group != modelGroup {
			plain = append(plain, obj)
			continue
		}
		if obj.GetAPIVersion() != ModelAPIVersion || obj.GetKind() != ModelKind {
			errs = append(errs, fmt.Errorf("%s: unknown kind %s: ferry.dev serves only %s %s", objectRef(obj), obj.GetAPIVersion(), ModelAPIVersion, ModelKind))
			continue
		}
		model, ferrs := decodeModel(obj)
		if len(ferrs) > 0 {
			errs = append(errs, &ModelError{Files: modelSources(fs, obj), Model: objectRef(obj), Errs: ferrs})
			continue
		}
		res.Models = append(res.Models, model)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sortModels(res.Models)

	objects := plain
	for _, model := range res.Models {
		generated, tests, err := expand(model)
		if err != nil {
			return nil, err
		}
		objects = append(objects, generated...)
		res.Tests = append(res.Tests, tests...)
	}
	if err := checkDuplicates(objects); err != nil {
		return nil, err
	}
	sortForApply(objects)
	res.Objects = objects

	digest, err := digestOf(res)
	if err != nil {
		return nil, err
	}
	res.Digest = digest
	return res, nil
}

func digestOf(res *Result) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h) // encoding/json sorts map keys: stable bytes
	for _, o := range res.Objects {
		if err := enc.Encode(o.Object); err != nil {
			return "", fmt.Errorf("%s: digest: %w", objectRef(o), err)
		}
	}
	if err := enc.Encode(res.Tests); err != nil {
		return "", fmt.Errorf("digest tests: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
