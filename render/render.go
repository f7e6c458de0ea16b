package render

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resmap"

	"github.com/ferry-gitops/ferry/internal/object"
)

// Options configures a Renderer. The zero value is usable: every limit has
// a default, and none may be negative.
type Options struct {
	// MaxFileBytes caps the size of any one file a build reads; 0 means 8 MiB.
	MaxFileBytes int64
	// MaxBuildBytes caps the bytes one render reads in all, each read counted
	// (a file read twice counts twice); 0 means 64 MiB. It bounds how long a
	// build can go on, including one whose caller has stopped waiting.
	MaxBuildBytes int64
	// MaxObjects caps the objects one environment renders to, before and
	// after Models are expanded; 0 means 10,000.
	MaxObjects int
	// MaxOutputBytes caps the size of a Result, measured as the JSON of its
	// Objects and Tests; 0 means 128 MiB. It also bounds what the cache holds.
	MaxOutputBytes int64
	// CacheBytes bounds what the cache of results holds; 0 means 64 MiB.
	// Results are kept encoded as JSON, so the bound is their memory.
	CacheBytes int64
}

// The defaults of Options' zero fields.
const (
	DefaultMaxFileBytes   = 8 << 20
	DefaultMaxBuildBytes  = 64 << 20
	DefaultMaxObjects     = 10_000
	DefaultMaxOutputBytes = 128 << 20
	DefaultCacheBytes     = 64 << 20
)

// Request names what to render.
type Request struct {
	// Root is the checkout; nothing outside it is read.
	Root string
	// Path is the environment directory, relative to Root (e.g. environments/dev).
	Path string
	// Key names what is rendered for the cache, e.g. repository/environment:
	// the same key at another commit reuses the result when its inputs did not
	// change. "" means Path.
	Key string
}

// Result is a rendered environment. Each Render returns a Result of its own
// (a cache hit is decoded afresh), so a caller may change it.
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
	// bytes is the size of the JSON of Objects and Tests, for the cache.
	bytes int64
}

// Renderer builds environments with kustomize in-process and remembers results
// by the content of their inputs. It is safe for concurrent use; kustomize
// builds themselves run one at a time (kubernetes-sigs/kustomize#3659), and
// waiting for one is bounded by the caller's context.
type Renderer struct {
	limits limits
	build  chan struct{} // the build slot: one kustomize build at a time
	cache  *resultCache  // Request.Key -> *cached

	// run builds path (relative to the checkout) on fs; tests replace it to
	// exercise panics and builds that block.
	run func(fs *boundedFS, path string) (resmap.ResMap, error)
	// scan checks the kustomization graph from dir before the build; tests
	// replace it to prove that the loader, not the scan, refuses URLs.
	scan func(fs *boundedFS, dir string) error
}

// limits are Options' limits with their defaults applied.
type limits struct {
	maxFile, maxBuild, maxOutput int64
	maxObjects                   int
}

type cached struct {
	hashes  map[string]string // input path -> sha256 of its content
	encoded []byte            // the Result as JSON (cache.go)
}

// New returns a Renderer, or an error when a field of opts is negative.
func New(opts Options) (*Renderer, error) {
	if opts.MaxFileBytes < 0 || opts.MaxBuildBytes < 0 || opts.MaxObjects < 0 || opts.MaxOutputBytes < 0 || opts.CacheBytes < 0 {
		return nil, errors.New("render: MaxFileBytes, MaxBuildBytes, MaxObjects, MaxOutputBytes and CacheBytes must not be negative")
	}
	l := limits{
		maxFile:    orDefault(opts.MaxFileBytes, DefaultMaxFileBytes),
		maxBuild:   orDefault(opts.MaxBuildBytes, DefaultMaxBuildBytes),
		maxOutput:  orDefault(opts.MaxOutputBytes, DefaultMaxOutputBytes),
		maxObjects: orDefault(opts.MaxObjects, DefaultMaxObjects),
	}
	return &Renderer{
		limits: l,
		build:  make(chan struct{}, 1),
		cache:  newResultCache(orDefault(opts.CacheBytes, DefaultCacheBytes)),
		run:    runKustomize,
		scan:   scanKustomizations,
	}, nil
}

func orDefault[T int | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// IsTransient reports whether err, returned by Render, was caused by the
// render's context ending (its deadline passed or it was cancelled), while
// waiting for the build slot, during the build or before it: the same render
// may succeed when retried. Every other error (a refusal, a bad Model, a
// limit, kustomize's own) comes from the checkout and recurs until it changes.
func IsTransient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// Render builds one environment. It returns a cached Result, without running
// kustomize, when every input file has the same content as last time. Errors
// name the environment and, where there is one, the file and field at fault.
// When ctx ends, Render returns at once with an error wrapping ctx.Err() (see
// IsTransient), and the build stops at its next file access.
func (r *Renderer) Render(ctx context.Context, req Request) (*Result, error) {
	path := filepath.ToSlash(filepath.Clean(req.Path))
	if filepath.IsAbs(req.Path) || path == ".." || strings.HasPrefix(path, "../") {
		return nil, fmt.Errorf("render %s: the environment path must be relative to the checkout and inside it", req.Path)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	fs, err := newBoundedFS(ctx, req.Root, r.limits.maxFile, r.limits.maxBuild)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	key := req.Key
	if key == "" {
		key = path
	}
	if res, ok := r.lookup(fs, key); ok {
		return res, nil
	}

	resources, err := r.kustomize(ctx, fs, path)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	res, err := assemble(resources, fs, r.limits)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	res.Inputs = fs.inputs()
	if encoded, err := encodeResult(res); err == nil {
		r.cache.add(key, &cached{hashes: fs.hashes(), encoded: encoded})
	}
	return res, nil
}

// lookup returns the cached result for key when all its inputs are unchanged.
func (r *Renderer) lookup(fs *boundedFS, key string) (*Result, bool) {
	c, ok := r.cache.get(key)
	if !ok {
		return nil, false
	}
	for file, want := range c.hashes {
		_, data, err := fs.readBounded(file)
		if err != nil || hashBytes(data) != want {
			return nil, false
		}
	}
	res, err := decodeResult(c.encoded)
	if err != nil {
		return nil, false // not expected: it was encoded here; build again
	}
	return res, true
}

// assemble expands Models, orders objects and computes the digest, within
// the object and output limits.
func assemble(m resmap.ResMap, fs *boundedFS, lim limits) (*Result, error) {
	if n := m.Size(); n > lim.maxObjects {
		return nil, fmt.Errorf("the build produced %d objects, over the limit of %d (MaxObjects); split the environment or raise the limit", n, lim.maxObjects)
	}
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
			errs = append(errs, fmt.Errorf("%s: unknown kind %s: ferry.dev serves only %s %s", object.String(obj), obj.GetAPIVersion(), ModelAPIVersion, ModelKind))
			continue
		}
		model, ferrs := decodeModel(obj)
		if len(ferrs) > 0 {
			errs = append(errs, &ModelError{Files: modelSources(fs, obj), Model: object.String(obj), Errs: ferrs})
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
	if len(objects) > lim.maxObjects {
		return nil, fmt.Errorf("expanding Models brings the environment to %d objects, over the limit of %d (MaxObjects); split the environment or raise the limit", len(objects), lim.maxObjects)
	}
	if err := checkDuplicates(objects); err != nil {
		return nil, err
	}
	sortForApply(objects)
	res.Objects = objects

	digest, err := digestOf(res, lim.maxOutput)
	if err != nil {
		return nil, err
	}
	res.Digest = digest
	return res, nil
}

// digestOf hashes the JSON of res's Objects and Tests, refusing a Result
// whose JSON is over maxOutput bytes.
func digestOf(res *Result, maxOutput int64) (string, error) {
	h := &cappedHash{Hash: sha256.New(), max: maxOutput}
	enc := json.NewEncoder(h) // encoding/json sorts map keys: stable bytes
	var err error
	for _, o := range res.Objects {
		if err = enc.Encode(o.Object); err != nil {
			err = fmt.Errorf("%s: digest: %w", object.String(o), err)
			break
		}
	}
	if err == nil {
		if err = enc.Encode(res.Tests); err != nil {
			err = fmt.Errorf("digest tests: %w", err)
		}
	}
	if errors.Is(err, errOutputTooLarge) {
		return "", fmt.Errorf("the rendered objects and tests are over the limit of %d bytes of JSON (MaxOutputBytes); split the environment or raise the limit", maxOutput)
	}
	if err != nil {
		return "", err
	}
	res.bytes = h.n
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

var errOutputTooLarge = errors.New("output over the limit")

// cappedHash is a hash that refuses to take more than max bytes.
type cappedHash struct {
	hash.Hash
	max, n int64
}

func (c *cappedHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.n > c.max {
		return 0, errOutputTooLarge
	}
	return c.Hash.Write(p)
}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
