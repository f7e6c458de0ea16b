package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"

	ferryobject "github.com/ferry-gitops/ferry/internal/object"
)

// readyMarker is written into a clone once its first fetch completed; a clone
// without it was interrupted and is made again.
const readyMarker = "ferry-ready"

// Repository is one tracked repository and its local clone. Its methods are
// safe for concurrent use; they run one at a time per repository, while
// different repositories proceed in parallel.
type Repository struct {
	name, url, branch string
	auth              transport.AuthMethod
	tokens            func(context.Context) (string, error) // Auth.TokenSource; auth is nil with it
	secrets           []string                              // grows with the tokens used (authFor)
	dir, treesDir     string
	author            object.Signature
	authorOf          func(context.Context) (object.Signature, error) // RepoOptions.Author
	maxFetch          int64
	objects           cache.Object // shared by every repository of the Source
	limits            repoLimits
	tags              bool

	mu    sync.Mutex // serialises everything that touches the clone
	repo  *git.Repository
	trees map[string]*treeRef // sha -> exported tree

	// fetches counts fetches that transferred data, for tests and metrics.
	fetches int64
}

// Name returns ferry's name for the repository.
func (r *Repository) Name() string { return r.name }

// trackingRef is where the fetched head of a remote branch is kept.
func trackingRef(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", branch)
}

// open returns the clone, creating it when missing and re-creating it when it
// is half-written, does not open, or was cloned from another URL. Callers
// hold r.mu.
func (r *Repository) open() (*git.Repository, error) {
	if r.repo != nil {
		return r.repo, nil
	}
	if _, err := os.Stat(filepath.Join(r.dir, readyMarker)); err == nil {
		if repo, err := r.openStorage(); err == nil {
			same, err := r.followConfig(repo)
			if err != nil {
				return nil, err
			}
			if same {
				r.repo = repo
				return repo, nil
			}
		}
	}
	// Missing, interrupted, unreadable or another remote's: start over.
	if err := os.RemoveAll(r.dir); err != nil {
		return nil, fmt.Errorf("repository %s: remove broken clone: %w", r.name, err)
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.name, err)
	}
	repo, err := git.Init(r.storage(), nil)
	if err != nil {
		return nil, fmt.Errorf("repository %s: init clone: %w", r.name, err)
	}
	if _, err = repo.CreateRemote(r.remoteConfig()); err != nil {
		return nil, fmt.Errorf("repository %s: configure remote: %w", r.name, err)
	}
	r.repo = repo
	return repo, nil
}

// remoteConfig is the clone's "origin" as the configuration describes it.
func (r *Repository) remoteConfig() *config.RemoteConfig {
	return &config.RemoteConfig{
		Name:  "origin",
		URLs:  []string{r.url},
		Fetch: []config.RefSpec{fetchSpec(r.branch)},
	}
}

// fetchSpec brings branch into its tracking ref; branch has passed
// ValidateBranch.
func fetchSpec(branch string) config.RefSpec {
	return config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, trackingRef(branch)))
}

// followConfig reports whether a clone kept from an earlier run may serve
// the configured repository, and makes its refspec follow the configured
// branch.
//
// A clone whose origin has another URL is not used (same is false): the
// caller deletes it and clones again. Re-pointing the remote would keep the
// old remote's tracking refs, which Push takes as its lease and Head as what
// the remote holds, its local branches, and its objects, which nothing would
// ever remove; a URL changes rarely (a migration, a rename), and one full
// fetch is the price of trusting nothing from the old remote. A new branch of
// the same remote only rewrites the refspec: every ref the clone holds came
// from that remote and stays true.
func (r *Repository) followConfig(repo *git.Repository) (same bool, err error) {
	cfg, err := repo.Config()
	if err != nil {
		return false, nil // unreadable: made again
	}
	want := r.remoteConfig()
	have, ok := cfg.Remotes["origin"]
	if !ok || !slices.Equal(have.URLs, want.URLs) {
		return false, nil
	}
	if !slices.Equal(have.Fetch, want.Fetch) {
		have.Fetch = want.Fetch
		if err := repo.SetConfig(cfg); err != nil {
			return false, fmt.Errorf("repository %s: point the clone at branch %s: %w", r.name, r.branch, err)
		}
	}
	return true, nil
}

func (r *Repository) storage() *limitedStorage {
	return &limitedStorage{
		Storage: filesystem.NewStorage(osfs.New(r.dir), r.objects),
		limit:   r.maxFetch,
		name:    r.name,
	}
}

func (r *Repository) openStorage() (*git.Repository, error) {
	repo, err := git.Open(r.storage(), nil)
	if err != nil {
		return nil, err
	}
	if _, err := repo.Remote("origin"); err != nil {
		return nil, err
	}
	return repo, nil
}

// reset forgets the clone so the next call makes it again; used when an
// operation finds it corrupt.
func (r *Repository) reset() {
	r.repo = nil
	os.Remove(filepath.Join(r.dir, readyMarker))
}

// Head returns the commit at the tip of the tracked branch on the remote. It
// asks the remote for its refs first (one round trip) and fetches only when
// the tip differs from the local copy, so an unchanged repository costs one
// small request. The SHA is always resolved here, never taken from a webhook.
func (r *Repository) Head(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sha, err := r.head(ctx)
	return sha, redact(err, r.secrets)
}

func (r *Repository) head(ctx context.Context) (string, error) {
	repo, err := r.open()
	if err != nil {
		return "", err
	}
	remoteSHA, err := r.lsRemote(ctx, repo, r.branch)
	if err != nil {
		return "", err
	}
	if remoteSHA.IsZero() {
		return "", fmt.Errorf("repository %s: branch %s does not exist on the remote", r.name, r.branch)
	}
	if local, err := repo.Reference(trackingRef(r.branch), true); err == nil && local.Hash() == remoteSHA {
		if _, err := repo.CommitObject(remoteSHA); err == nil {
			return remoteSHA.String(), nil
		}
	}
	if err := r.fetch(ctx, repo, r.branch); err != nil {
		return "", err
	}
	return remoteSHA.String(), nil
}

// Fetch fetches the tracked branch without asking first whether it moved, and
// returns its head: for when a push webhook already said it did, saving the
// round trip Head spends on that question.
func (r *Repository) Fetch(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sha, err := r.fetchHead(ctx)
	return sha, redact(err, r.secrets)
}

func (r *Repository) fetchHead(ctx context.Context) (string, error) {
	repo, err := r.open()
	if err != nil {
		return "", err
	}
	if err := r.fetch(ctx, repo, r.branch); err != nil {
		return "", err
	}
	ref, err := repo.Reference(trackingRef(r.branch), true)
	if err != nil {
		return "", fmt.Errorf("repository %s: branch %s does not exist on the remote", r.name, r.branch)
	}
	return ref.Hash().String(), nil
}

// lsRemote returns the remote's commit for branch, or the zero hash when the
// branch does not exist there.
func (r *Repository) lsRemote(ctx context.Context, repo *git.Repository, branch string) (plumbing.Hash, error) {
	remote, err := repo.Remote("origin")
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("repository %s: %w", r.name, err)
	}
	auth, err := r.authFor(ctx)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return plumbing.ZeroHash, nil
		}
		return plumbing.ZeroHash, fmt.Errorf("repository %s: list remote refs: %w", r.name, err)
	}
	want := plumbing.NewBranchReferenceName(branch)
	for _, ref := range refs {
		if ref.Name() == want {
			return ref.Hash(), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// fetch brings branch into its tracking ref, incrementally; tags only when
// the repository asks for them.
func (r *Repository) fetch(ctx context.Context, repo *git.Repository, branch string) error {
	remote, err := repo.Remote("origin")
	if err != nil {
		return fmt.Errorf("repository %s: %w", r.name, err)
	}
	spec := fetchSpec(branch)
	tags := git.NoTags
	if r.tags {
		tags = git.AllTags
	}
	auth, err := r.authFor(ctx)
	if err != nil {
		return err
	}
	err = remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Auth: auth, Tags: tags})
	switch {
	case err == nil:
		r.fetches++
	case errors.Is(err, git.NoErrAlreadyUpToDate):
	default:
		if _, tooBig := errors.AsType[*FetchTooLargeError](err); !tooBig && isCorrupt(err) {
			r.reset()
		}
		return fmt.Errorf("repository %s: fetch %s: %w", r.name, branch, err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, readyMarker), nil, 0o600); err != nil {
		return fmt.Errorf("repository %s: %w", r.name, err)
	}
	return nil
}

// isCorrupt reports errors that mean the local clone, not the remote, is broken.
func isCorrupt(err error) bool {
	return errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, plumbing.ErrInvalidType)
}

// commit returns a commit the clone holds.
func (r *Repository) commit(repo *git.Repository, sha string) (*object.Commit, error) {
	h := plumbing.NewHash(sha)
	if h.IsZero() || h.String() != sha {
		return nil, fmt.Errorf("repository %s: %q is not a full commit SHA", r.name, sha)
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("repository %s@%s: %w", r.name, short(sha), err)
	}
	return c, nil
}

// short cuts a SHA for messages, as every Ferry package does.
func short(sha string) string { return ferryobject.ShortSHA(sha) }
