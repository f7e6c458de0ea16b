package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Options configures a Source.
type Options struct {
	// DataDir holds one clone per repository, and the trees checked out of them.
	DataDir string
	// Author signs the commits Commit makes, unless RepoOptions.Author says
	// otherwise.
	Author object.Signature
	// MaxFetchBytes aborts a fetch whose pack is larger; 0 means
	// DefaultMaxFetchBytes.
	MaxFetchBytes int64
	// MaxCheckoutFiles refuses a checkout whose tree holds more entries,
	// directories included; 0 means DefaultMaxCheckoutFiles. The tree is
	// counted before anything is written.
	MaxCheckoutFiles int
	// MaxCheckoutBytes refuses a checkout whose files add up to more bytes;
	// 0 means DefaultMaxCheckoutBytes. Counted before anything is written.
	MaxCheckoutBytes int64
	// MaxChangedPaths stops Changed once it has met more entries, directories
	// included, in the trees it compares; 0 means DefaultMaxChangedPaths.
	MaxChangedPaths int
	// ObjectCacheBytes bounds the cache of decoded Git objects that every
	// repository shares; 0 means DefaultObjectCacheBytes. Objects are named
	// by their hash, so repositories can share one cache; one each (go-git's
	// default is 96 MiB per repository) would grow with the number of
	// repositories, and an idle repository would keep what it last read.
	ObjectCacheBytes int64
}

// DefaultObjectCacheBytes is the default of Options.ObjectCacheBytes.
const DefaultObjectCacheBytes = 32 << 20

// Source is the cache of local clones, one per repository.
type Source struct {
	opts  Options
	mu    sync.Mutex
	repos map[string]*Repository
	// objects is the cache of decoded Git objects all repositories share.
	objects cache.Object
}

// New returns a Source keeping its clones under opts.DataDir.
func New(opts Options) (*Source, error) {
	if opts.DataDir == "" {
		return nil, errors.New("source: DataDir is required")
	}
	if opts.Author.Name == "" || opts.Author.Email == "" {
		return nil, errors.New("source: Author needs a name and an email for promotion commits")
	}
	if opts.MaxFetchBytes <= 0 {
		opts.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if opts.MaxCheckoutFiles <= 0 {
		opts.MaxCheckoutFiles = DefaultMaxCheckoutFiles
	}
	if opts.MaxCheckoutBytes <= 0 {
		opts.MaxCheckoutBytes = DefaultMaxCheckoutBytes
	}
	if opts.MaxChangedPaths <= 0 {
		opts.MaxChangedPaths = DefaultMaxChangedPaths
	}
	if opts.ObjectCacheBytes <= 0 {
		opts.ObjectCacheBytes = DefaultObjectCacheBytes
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return &Source{opts: opts, repos: map[string]*Repository{}, objects: cache.NewObjectLRU(cache.FileSize(opts.ObjectCacheBytes))}, nil
}

// RepoOptions names a repository to track.
type RepoOptions struct {
	// Name is ferry's name for it; it names the clone's directory.
	Name   string
	URL    string
	Branch string
	Auth   Auth
	// AllowLocal permits local paths, file:// and http:// URLs.
	AllowLocal bool
	// Tags fetches the remote's tags too; by default only the branch is fetched.
	Tags bool
	// Author, when set, signs this repository's commits instead of
	// Options.Author: a GitHub App's bot, looked up on first use. It is
	// called by each Commit (When is set there); its error fails the commit.
	Author func(ctx context.Context) (object.Signature, error)
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Open returns the handle of one repository; the clone is made on first use.
// Opening the same name twice returns the same handle, or an error if the
// URL or branch differ. A clone kept from an earlier run (under
// DataDir/repos/<name>.git) is checked against opts on first use: it is made
// again when its remote URL differs, and its refspec follows a new branch.
func (s *Source) Open(opts RepoOptions) (*Repository, error) {
	if !repoName.MatchString(opts.Name) {
		return nil, fmt.Errorf("repository %q: the name must be letters, digits, '.', '_' or '-'", opts.Name)
	}
	if opts.Branch == "" {
		return nil, fmt.Errorf("repository %s: branch is required", opts.Name)
	}
	if err := ValidateBranch(opts.Branch); err != nil {
		return nil, fmt.Errorf("repository %s: %w", opts.Name, err)
	}
	if err := ValidateURL(opts.URL, opts.AllowLocal); err != nil {
		return nil, fmt.Errorf("repository %s: %w", opts.Name, err)
	}
	auth, err := opts.Auth.method(opts.Name, filepath.Join(s.opts.DataDir, "ssh"))
	if err != nil {
		return nil, redact(err, opts.Auth.secrets())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repos[opts.Name]; ok {
		if r.url != opts.URL || r.branch != opts.Branch {
			return nil, fmt.Errorf("repository %s: already open with another URL or branch; give each repository its own name", opts.Name)
		}
		return r, nil
	}
	r := &Repository{
		name:     opts.Name,
		url:      opts.URL,
		branch:   opts.Branch,
		auth:     auth,
		tokens:   opts.Auth.TokenSource,
		secrets:  opts.Auth.secrets(),
		dir:      filepath.Join(s.opts.DataDir, "repos", opts.Name+".git"),
		treesDir: filepath.Join(s.opts.DataDir, "trees", opts.Name),
		author:   s.opts.Author,
		authorOf: opts.Author,
		maxFetch: s.opts.MaxFetchBytes,
		objects:  s.objects,
		limits: repoLimits{
			checkout: checkoutLimits{
				files: entryCap{limit: s.opts.MaxCheckoutFiles, option: "MaxCheckoutFiles"},
				bytes: s.opts.MaxCheckoutBytes,
			},
			changed: entryCap{limit: s.opts.MaxChangedPaths, option: "MaxChangedPaths"},
		},
		tags:  opts.Tags,
		trees: map[string]*treeRef{},
	}
	s.repos[opts.Name] = r
	return r, nil
}
