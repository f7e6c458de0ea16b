package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ErrRefNotFound is returned by PullRequests.Fetch and FetchRefs when the
// remote does not have a ref asked for: a pull request number that does not
// exist, or a branch that was deleted. Retrying does not help.
var ErrRefNotFound = errors.New("the remote has no such ref")

// pullRefs is where fetched pull requests are kept in the clone: a namespace
// of ferry's own, which nothing pushes and the engine's refs never share.
const pullRefs = "refs/ferry/pull/"

// PullRequests is the read-only door to a repository's pull requests: it
// fetches refs/pull/N/head from the tracked repository's own URL (a fork's
// head included, as GitHub mirrors it there) with credentials of its own,
// and reads what it fetched. It has no way to push: it holds no write
// credentials, never the repository's Auth, and writes refs only under
// refs/ferry/, which Push never sends. It shares the clone, and its lock,
// with its Repository. It is safe for concurrent use.
type PullRequests struct {
	r       *Repository
	auth    transport.AuthMethod
	secrets []string
}

// Pull is a fetched pull request: its head, and the tip of the tracked
// branch it would merge into, as the remote held them.
type Pull struct {
	Number int
	Head   string
	Base   string
}

// PullRequests returns the read-only door to r's pull requests, fetching
// with auth: read-only credentials (a read-only token or deploy key), or the
// zero Auth for anonymous fetches, never the credentials promotions push
// with. A token source is refused.
func (r *Repository) PullRequests(auth Auth) (*PullRequests, error) {
	if auth.TokenSource != nil {
		return nil, fmt.Errorf("repository %s: pull requests: a token source is not supported for reading pull requests; give a read-only token or SSH key", r.name)
	}
	method, err := auth.method(r.name, filepath.Join(filepath.Dir(filepath.Dir(r.dir)), "ssh", "pull"))
	if err != nil {
		return nil, redact(err, auth.secrets())
	}
	return &PullRequests{r: r, auth: method, secrets: auth.secrets()}, nil
}

// Name returns ferry's name for the repository.
func (p *PullRequests) Name() string { return p.r.name }

// Fetch fetches pull request number's head (refs/pull/N/head) and the
// tracked branch in one request, into refs/ferry/pull/N/head and
// refs/ferry/pull/N/base, and returns both commits. It never trusts a
// webhook's SHAs. A number the remote has no ref for is an error matching
// ErrRefNotFound.
func (p *PullRequests) Fetch(ctx context.Context, number int) (Pull, error) {
	if number <= 0 {
		return Pull{}, fmt.Errorf("repository %s: pull request %d: not a pull request number", p.r.name, number)
	}
	local := fmt.Sprintf("%s%d/", pullRefs, number)
	shas, err := p.fetch(ctx, fmt.Sprintf("pull request #%d", number), []string{
		fmt.Sprintf("refs/pull/%d/head", number), "refs/heads/" + p.r.branch,
	}, []string{local + "head", local + "base"})
	if err != nil {
		return Pull{}, err
	}
	return Pull{Number: number, Head: shas[0], Base: shas[1]}, nil
}

// FetchRefs fetches the named refs, and the tracked branch, in one request
// and returns the commit of each, in order: for previews of two refs that
// are not a pull request (ferry preview --base --head). A name is a branch
// ("main"), a full ref ("refs/heads/x", "refs/tags/v1", "refs/pull/7/head")
// or a full commit SHA the clone holds once the tracked branch is fetched.
// A name that is none of these is refused before any request.
func (p *PullRequests) FetchRefs(ctx context.Context, names ...string) ([]string, error) {
	remote := make([]string, 0, len(names)+1)
	local := make([]string, 0, len(names)+1)
	for i, name := range names {
		if isFullSHA(name) {
			continue
		}
		ref, err := refName(name)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", p.r.name, err)
		}
		remote = append(remote, ref)
		local = append(local, fmt.Sprintf("refs/ferry/fetch/%d", i))
	}
	remote = append(remote, "refs/heads/"+p.r.branch)
	local = append(local, "refs/ferry/fetch/branch")
	shas, err := p.fetch(ctx, strings.Join(names, " and "), remote, local)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	next := 0
	for i, name := range names {
		if isFullSHA(name) {
			out[i] = name
			continue
		}
		out[i] = shas[next]
		next++
	}
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	repo, err := p.r.open()
	if err != nil {
		return nil, redact(err, p.all())
	}
	for _, sha := range out {
		if _, err := p.r.commit(repo, sha); err != nil {
			return nil, fmt.Errorf("%w: fetch the branch that holds it, or give a branch or ref instead", redact(err, p.all()))
		}
	}
	return out, nil
}

// fetch brings each remote ref into the local ref of the same index, under
// the repository's lock, and returns the commits they point at. what names
// the fetch in errors.
func (p *PullRequests) fetch(ctx context.Context, what string, remote, local []string) ([]string, error) {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	shas, err := p.fetchLocked(ctx, what, remote, local)
	return shas, redact(err, p.all())
}

func (p *PullRequests) fetchLocked(ctx context.Context, what string, remote, local []string) ([]string, error) {
	r := p.r
	repo, err := r.open()
	if err != nil {
		return nil, err
	}
	specs := make([]config.RefSpec, len(remote))
	for i := range remote {
		specs[i] = config.RefSpec("+" + remote[i] + ":" + local[i])
	}
	// An anonymous remote, never saved in the clone's configuration: it
	// fetches with the read credentials only, and nothing can push to it.
	rem := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "ferry-read", URLs: []string{r.url}})
	err = rem.FetchContext(ctx, &git.FetchOptions{RefSpecs: specs, Auth: p.auth, Tags: git.NoTags})
	switch {
	case err == nil:
		r.fetches++
	case errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, git.NoMatchingRefSpecError{}):
		return nil, fmt.Errorf("repository %s: fetch %s: %w: %v", r.name, what, ErrRefNotFound, err)
	default:
		if _, tooBig := errors.AsType[*FetchTooLargeError](err); !tooBig && isCorrupt(err) {
			r.reset()
		}
		return nil, fmt.Errorf("repository %s: fetch %s: %w", r.name, what, err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, readyMarker), nil, 0o600); err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.name, err)
	}
	shas := make([]string, len(local))
	for i, name := range local {
		ref, err := repo.Reference(plumbing.ReferenceName(name), true)
		if err != nil {
			return nil, fmt.Errorf("repository %s: fetch %s: %s: %w", r.name, what, remote[i], ErrRefNotFound)
		}
		shas[i] = ref.Hash().String()
	}
	return shas, nil
}

// all is every secret an error of the door could hold: its own and the
// repository's.
func (p *PullRequests) all() []string {
	return append(append([]string(nil), p.secrets...), p.r.secrets...)
}

// Checkout is Repository.Checkout, for commits this door fetched.
func (p *PullRequests) Checkout(ctx context.Context, sha string) (*Tree, error) {
	return p.r.Checkout(ctx, sha)
}

// Changed is Repository.Changed, for commits this door fetched.
func (p *PullRequests) Changed(ctx context.Context, from, to string) (*Changes, error) {
	return p.r.Changed(ctx, from, to)
}

// MergeBase is Repository.MergeBase, for commits this door fetched.
func (p *PullRequests) MergeBase(ctx context.Context, a, b string) (string, error) {
	return p.r.MergeBase(ctx, a, b)
}

// MergeBase returns the best common ancestor of commits a and b, both
// fetched, as `git merge-base a b` does; of several equally good ones, the
// newest. Commits that share no history are an error naming both.
func (r *Repository) MergeBase(ctx context.Context, a, b string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	repo, err := r.open()
	if err != nil {
		return "", redact(err, r.secrets)
	}
	ca, err := r.commit(repo, a)
	if err != nil {
		return "", redact(err, r.secrets)
	}
	cb, err := r.commit(repo, b)
	if err != nil {
		return "", redact(err, r.secrets)
	}
	bases, err := ca.MergeBase(cb)
	if err != nil {
		return "", redact(fmt.Errorf("repository %s: merge base of %s and %s: %w", r.name, short(a), short(b), err), r.secrets)
	}
	if len(bases) == 0 {
		return "", fmt.Errorf("repository %s: %s and %s share no history: there is nothing to compare against", r.name, short(a), short(b))
	}
	best := bases[0]
	for _, c := range bases[1:] {
		if c.Committer.When.After(best.Committer.When) {
			best = c
		}
	}
	return best.Hash.String(), nil
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

func isFullSHA(s string) bool { return fullSHA.MatchString(s) }

// refName turns a name given on the command line into a full ref: a branch
// name into refs/heads/<name>; a full ref under refs/heads/, refs/tags/ or
// refs/pull/ is kept, once its rest passes ValidateBranch's rules.
func refName(name string) (string, error) {
	rest, isRef := strings.CutPrefix(name, "refs/")
	if !isRef {
		if err := ValidateBranch(name); err != nil {
			return "", err
		}
		return "refs/heads/" + name, nil
	}
	kind, _, _ := strings.Cut(rest, "/")
	if kind != "heads" && kind != "tags" && kind != "pull" {
		return "", fmt.Errorf("%q: only refs under refs/heads/, refs/tags/ and refs/pull/ can be fetched", name)
	}
	if reason := branchProblem(rest); reason != "" {
		return "", fmt.Errorf("%q is not a valid ref: %s", name, reason)
	}
	return name, nil
}
