package render

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// RefusedError reports a kustomization that asks for something Ferry never
// does during a render: load a URL or a remote base, run a KRM function,
// inflate a Helm chart, or read a file outside the checkout. Nothing is
// fetched or executed before it is returned.
type RefusedError struct {
	// Kustomization is the file, relative to the checkout: the one naming the
	// reference, or for a URL the one whose build asked for it.
	Kustomization string
	// Field is where the reference is, e.g. resources[2]; empty when only
	// kustomize's loader saw the reference (every URL).
	Field string
	// Ref is the reference as written.
	Ref    string
	Reason string
}

func (e *RefusedError) Error() string {
	where := e.Kustomization
	if e.Field != "" {
		where += ": " + e.Field
	}
	if e.Ref == "" {
		return fmt.Sprintf("%s: %s", where, e.Reason)
	}
	return fmt.Sprintf("%s: %q: %s", where, e.Ref, e.Reason)
}

const (
	reasonHelm = "Helm chart inflation is off in Ferry: render the chart to plain manifests and commit them"
	reasonKRM  = "KRM functions (exec and container) are off in Ferry: run them before committing and commit their output"
)

// scanner walks the kustomization graph from an environment before kustomize
// builds it, to refuse what kustomize would otherwise run (Helm, KRM
// functions) and to name the kustomization file and field of a path that
// leaves the checkout. It is not the guard against URLs and remote bases:
// the build's loader (loader.go) refuses those whatever field names them, so
// here they are paths that do not exist.
type scanner struct {
	fs      *boundedFS
	visited map[string]bool // kustomization dirs fully scanned
	stack   []string        // dirs being scanned, for cycle reports
}

func scanKustomizations(fs *boundedFS, dir string) error {
	s := &scanner{fs: fs, visited: map[string]bool{}}
	return s.scan(dir)
}

func (s *scanner) scan(dir string) error {
	rel := s.fs.rel(dir)
	for i, d := range s.stack {
		if d == dir {
			cycle := append(append([]string{}, s.stack[i:]...), dir)
			for j := range cycle {
				cycle[j] = s.fs.rel(cycle[j])
			}
			return fmt.Errorf("%s: kustomization cycle: %s", rel, strings.Join(cycle, " -> "))
		}
	}
	if s.visited[dir] {
		return nil
	}
	file, k, err := s.load(dir)
	if err != nil {
		return err
	}
	if file == "" {
		return nil // a plain directory of manifests; kustomize reports what it must
	}
	s.stack = append(s.stack, dir)
	defer func() { s.stack = s.stack[:len(s.stack)-1] }()

	kf := s.fs.rel(file)
	if len(k.HelmCharts) > 0 || k.HelmGlobals != nil || len(k.HelmChartInflationGenerator) > 0 {
		return &RefusedError{Kustomization: kf, Field: "helmCharts", Reason: reasonHelm}
	}

	// Bases: each may be a directory to scan recursively.
	bases := map[string][]string{"resources": k.Resources, "bases": k.Bases, "components": k.Components}
	for _, field := range []string{"resources", "bases", "components"} {
		for i, ref := range bases[field] {
			target, err := s.local(kf, fmt.Sprintf("%s[%d]", field, i), dir, ref)
			if err != nil {
				return err
			}
			if s.fs.IsDir(target) {
				if err := s.scan(target); err != nil {
					return err
				}
			}
		}
	}

	// Files: each must stay inside the checkout.
	for _, f := range fileRefs(k) {
		if _, err := s.local(kf, f.field, dir, f.ref); err != nil {
			return err
		}
	}
	for field, entries := range map[string][]string{"generators": k.Generators, "transformers": k.Transformers, "validators": k.Validators} {
		for i, entry := range entries {
			if err := s.checkPlugin(kf, fmt.Sprintf("%s[%d]", field, i), dir, entry); err != nil {
				return err
			}
		}
	}
	s.visited[dir] = true
	return nil
}

// load reads the kustomization file of dir, if it has one.
func (s *scanner) load(dir string) (string, *types.Kustomization, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		file := filepath.Join(dir, name)
		if !s.fs.Exists(file) {
			continue
		}
		data, err := s.fs.ReadFile(file)
		if err != nil {
			return "", nil, err
		}
		var k types.Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			return "", nil, fmt.Errorf("%s: %w", s.fs.rel(file), err)
		}
		return file, &k, nil
	}
	return "", nil, nil
}

// local resolves ref against dir, refusing paths that leave the checkout,
// and returns the absolute path.
func (s *scanner) local(kf, field, dir, ref string) (string, error) {
	target := ref
	if !filepath.IsAbs(target) {
		target = filepath.Join(dir, ref)
	}
	n, err := s.fs.confine(target)
	if err != nil {
		if _, ok := errors.AsType[*EscapeError](err); ok {
			return "", &RefusedError{Kustomization: kf, Field: field, Ref: ref, Reason: "leaves the repository checkout; reference files inside the repository only"}
		}
		return "", err
	}
	return n.abs, nil
}

// checkPlugin refuses a generator, transformer or validator configured as a
// KRM function (exec or container), inline or in a file.
func (s *scanner) checkPlugin(kf, field, dir, entry string) error {
	config := []byte(entry)
	if !strings.Contains(entry, "\n") {
		abs, err := s.local(kf, field, dir, entry)
		if err != nil {
			return err
		}
		if s.fs.IsDir(abs) {
			return s.scan(abs)
		}
		if !s.fs.Exists(abs) {
			return nil // kustomize reports it missing, or its loader refuses it
		}
		if config, err = s.fs.ReadFile(abs); err != nil {
			return err
		}
	}
	docs, err := decodeStream(config)
	if err != nil {
		return nil // kustomize reports malformed YAML with more context
	}
	for _, doc := range docs {
		annotations := doc.GetAnnotations()
		for _, key := range []string{"config.kubernetes.io/function", "config.k8s.io/function"} {
			if _, ok := annotations[key]; ok {
				return &RefusedError{Kustomization: kf, Field: field, Ref: entry, Reason: reasonKRM}
			}
		}
	}
	return nil
}

type fileRef struct{ field, ref string }

// fileRefs lists every file a kustomization names outside its bases.
func fileRefs(k *types.Kustomization) []fileRef {
	var refs []fileRef
	add := func(field, ref string) {
		if ref != "" {
			refs = append(refs, fileRef{field, ref})
		}
	}
	for i, p := range k.Patches {
		add(fmt.Sprintf("patches[%d].path", i), p.Path)
	}
	for i, p := range k.PatchesStrategicMerge {
		if s := string(p); !strings.ContainsAny(s, "\n:") {
			add(fmt.Sprintf("patchesStrategicMerge[%d]", i), s)
		}
	}
	for i, p := range k.PatchesJson6902 {
		add(fmt.Sprintf("patchesJson6902[%d].path", i), p.Path)
	}
	for i, r := range k.Replacements {
		add(fmt.Sprintf("replacements[%d].path", i), r.Path)
	}
	for i, c := range k.Crds {
		add(fmt.Sprintf("crds[%d]", i), c)
	}
	for i, c := range k.Configurations {
		add(fmt.Sprintf("configurations[%d]", i), c)
	}
	add("openapi.path", k.OpenAPI["path"])
	generators := func(kind string, args []types.GeneratorArgs) {
		for i, g := range args {
			for j, f := range g.FileSources {
				_, path, found := strings.Cut(f, "=")
				if !found {
					path = f
				}
				add(fmt.Sprintf("%s[%d].files[%d]", kind, i, j), path)
			}
			for j, e := range g.EnvSources {
				add(fmt.Sprintf("%s[%d].envs[%d]", kind, i, j), e)
			}
			add(fmt.Sprintf("%s[%d].env", kind, i), g.EnvSource)
		}
	}
	cms := make([]types.GeneratorArgs, len(k.ConfigMapGenerator))
	for i, c := range k.ConfigMapGenerator {
		cms[i] = c.GeneratorArgs
	}
	secrets := make([]types.GeneratorArgs, len(k.SecretGenerator))
	for i, c := range k.SecretGenerator {
		secrets[i] = c.GeneratorArgs
	}
	generators("configMapGenerator", cms)
	generators("secretGenerator", secrets)
	return refs
}
