package render

import (
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/ifc"
	"sigs.k8s.io/kustomize/api/konfig"
	kloader "sigs.k8s.io/kustomize/api/pkg/loader"
)

const reasonRemote = "Ferry loads nothing from outside the repository during a render (no URL, no remote base): vendor the file or base into the repository and refer to it by a relative path"

// loader is the ifc.Loader every build reads through, and the guard against
// loading anything over the network. It wraps kustomize's own file loader,
// rooted at the checkout on the bounded file system with loads restricted to
// each kustomization's directory, and before that loader sees a reference:
//
//   - Load(location) refuses any location with a URL scheme, where kustomize
//     would fetch http(s) itself;
//   - New(root) refuses anything kustomize would clone as a git repository
//     (isRemote).
//
// Whatever field of a kustomization or of a generator or transformer config
// names a reference, kustomize resolves it through Load or New, so the guard
// does not depend on knowing the fields. To leave nothing to the predicates,
// relative references reach the inner loader prefixed with "./", which
// kustomize never parses as a repository (git.extractHost needs a scheme, a
// user@ or a github.com prefix) or a URL (url.Parse sees no scheme).
type loader struct {
	inner ifc.Loader
	fs    *boundedFS
	guard *loadGuard
}

var _ ifc.Loader = (*loader)(nil)

// loadGuard is shared by the loaders of one build and keeps its first
// refusal, so the render reports it whatever kustomize wraps it in, and fails
// even if kustomize went on without the reference.
type loadGuard struct {
	mu      sync.Mutex
	refused *RefusedError
}

// newLoader returns the root loader of a build: the checkout root, whose
// relative paths the bounded file system resolves against that root.
func newLoader(fs *boundedFS) *loader {
	return &loader{inner: kloader.NewFileLoaderAtCwd(fs), fs: fs, guard: &loadGuard{}}
}

// Repo is always "": no loader of ferry's comes from a clone.
func (l *loader) Repo() string { return "" }

func (l *loader) Root() string { return l.inner.Root() }

// New returns a loader rooted at root, a directory relative to this one, or
// a *RefusedError when kustomize could take root for a remote repository.
func (l *loader) New(root string) (ifc.Loader, error) {
	if isRemote(root) {
		return nil, l.refuse(root)
	}
	inner, err := l.inner.New(local(root))
	if err != nil {
		return nil, err
	}
	return &loader{inner: inner, fs: l.fs, guard: l.guard}, nil
}

// Load returns the content of a file relative to this loader's root, or a
// *RefusedError when location has a URL scheme.
func (l *loader) Load(location string) ([]byte, error) {
	if hasScheme(location) {
		return nil, l.refuse(location)
	}
	return l.inner.Load(local(location))
}

func (l *loader) Cleanup() error { return l.inner.Cleanup() }

// refusal returns the build's first refusal, or nil.
func (l *loader) refusal() *RefusedError {
	l.guard.mu.Lock()
	defer l.guard.mu.Unlock()
	return l.guard.refused
}

// refuse records and returns the refusal of ref, named after the
// kustomization of this loader's root, whose build asked for it.
func (l *loader) refuse(ref string) error {
	err := &RefusedError{Kustomization: l.kustomizationFile(), Ref: ref, Reason: reasonRemote}
	l.guard.mu.Lock()
	defer l.guard.mu.Unlock()
	if l.guard.refused == nil {
		l.guard.refused = err
	}
	return err
}

// kustomizationFile returns the kustomization file in this loader's root,
// relative to the checkout, or the directory when none is found.
func (l *loader) kustomizationFile() string {
	root := l.inner.Root()
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if file := filepath.Join(root, name); l.fs.Exists(file) {
			return l.fs.rel(file)
		}
	}
	return l.fs.rel(root)
}

// userPrefix is how kustomize recognises a user name before a host
// (internal/git/repospec.go, extractUsername).
var userPrefix = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// local prefixes a relative reference with "./" so that kustomize reads it
// as a path and nothing else. Absolute and empty references pass unchanged:
// kustomize refuses both as roots, and the bounded file system confines an
// absolute file to the checkout.
func local(ref string) string {
	if ref == "" || filepath.IsAbs(ref) {
		return ref
	}
	return "./" + ref
}

// hasScheme reports whether location starts with a URL scheme (http:,
// https:, ssh:, file:, git::, gh: …), which no file in a checkout needs.
func hasScheme(location string) bool {
	if strings.Contains(location, "://") {
		return true
	}
	u, err := url.Parse(location)
	return err == nil && len(u.Scheme) > 1 // a one-letter scheme is a Windows drive
}

// isRemote reports whether kustomize could treat ref as a repository to
// clone: anything with a scheme, a go-getter (git::) or scp-style
// (user@host:path) address, anything starting with user@ (as kustomize's
// git.extractUsername reads it), a github.com/, gitlab.com/ or bitbucket.org/
// path, a ?ref= or ?version= query, or anything starting with "-" that git
// would read as a flag.
func isRemote(ref string) bool {
	lower := strings.ToLower(ref)
	if hasScheme(ref) || strings.HasPrefix(ref, "-") || strings.HasPrefix(lower, "git::") || strings.HasPrefix(lower, "gh:") {
		return true
	}
	if at := strings.Index(ref, "@"); at > 0 && (strings.Contains(ref[at:], ":") || userPrefix.MatchString(ref)) {
		return true
	}
	if strings.Contains(lower, "?ref=") || strings.Contains(lower, "?version=") {
		return true
	}
	for _, host := range []string{"github.com", "gitlab.com", "bitbucket.org"} {
		if strings.HasPrefix(lower, host+"/") || strings.HasPrefix(lower, host+":") {
			return true
		}
	}
	return false
}
