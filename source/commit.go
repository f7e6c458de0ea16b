package source

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrStale is returned by Push when the remote branch moved since ferry last
// saw it: someone else pushed. Fetch the branch again and retry.
var ErrStale = errors.New("the remote branch moved since it was last fetched")

// Change is a commit to make: Files written over the tree of Base, on Branch.
type Change struct {
	// Branch must pass ValidateBranch.
	Branch string
	// Base is the parent commit; it must have been fetched.
	Base string
	// Files maps slash paths to their new content.
	Files   map[string][]byte
	Message string
}

// Commit creates the commit described by c in the clone, points the local
// branch at it, and returns its SHA. Nothing leaves the machine until Push.
func (r *Repository) Commit(ctx context.Context, c Change) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sha, err := r.commitChange(ctx, c)
	return sha, redact(err, r.secrets)
}

func (r *Repository) commitChange(ctx context.Context, c Change) (string, error) {
	if c.Branch == "" || c.Message == "" || len(c.Files) == 0 {
		return "", fmt.Errorf("repository %s: commit needs a branch, a message and at least one file", r.name)
	}
	if err := ValidateBranch(c.Branch); err != nil {
		return "", fmt.Errorf("repository %s: commit: %w", r.name, err)
	}
	repo, err := r.open()
	if err != nil {
		return "", err
	}
	base, err := r.commit(repo, c.Base)
	if err != nil {
		return "", err
	}
	tree := base.TreeHash
	paths := make([]string, 0, len(c.Files))
	for p := range c.Files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		clean := path.Clean(p)
		if clean != p || !validPath(clean) {
			return "", fmt.Errorf("repository %s: commit: %q is not a clean relative path", r.name, p)
		}
		blob, err := writeBlob(repo.Storer, c.Files[p])
		if err != nil {
			return "", fmt.Errorf("repository %s: commit %s: %w", r.name, p, err)
		}
		if tree, err = setPath(repo.Storer, tree, strings.Split(clean, "/"), blob); err != nil {
			return "", fmt.Errorf("repository %s: commit %s: %w", r.name, p, err)
		}
	}

	sig, err := r.signature(ctx)
	if err != nil {
		return "", err
	}
	sig.When = time.Now()
	commit := &object.Commit{
		Author: sig, Committer: sig,
		Message:      c.Message,
		TreeHash:     tree,
		ParentHashes: []plumbing.Hash{base.Hash},
	}
	obj := repo.Storer.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return "", fmt.Errorf("repository %s: commit: %w", r.name, err)
	}
	hash, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return "", fmt.Errorf("repository %s: commit: %w", r.name, err)
	}
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(c.Branch), hash)
	if err := repo.Storer.SetReference(ref); err != nil {
		return "", fmt.Errorf("repository %s: commit: %w", r.name, err)
	}
	return hash.String(), nil
}

func validPath(p string) bool {
	return p != "." && !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "../") && p != ".." && !strings.Contains(p, "/.git/") && !strings.HasPrefix(p, ".git/")
}

func writeBlob(s storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// setPath returns a new tree: tree with the file at parts set to blob,
// creating or rewriting the trees along the way.
func setPath(s storer.EncodedObjectStorer, tree plumbing.Hash, parts []string, blob plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !tree.IsZero() {
		t, err := object.GetTree(s, tree)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = slices.Clone(t.Entries)
	}
	name := parts[0]
	i := slices.IndexFunc(entries, func(e object.TreeEntry) bool { return e.Name == name })
	var entry object.TreeEntry
	if len(parts) == 1 {
		entry = object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob}
		if i >= 0 && entries[i].Mode == filemode.Executable {
			entry.Mode = filemode.Executable
		}
	} else {
		sub := plumbing.ZeroHash
		if i >= 0 {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s is a file, not a directory", name)
			}
			sub = entries[i].Hash
		}
		h, err := setPath(s, sub, parts[1:], blob)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entry = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if i >= 0 {
		entries[i] = entry
	} else {
		entries = append(entries, entry)
	}
	// Git orders entries by name, comparing a directory as if it ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })

	obj := s.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// FetchBranch brings a remote branch (a promotion branch, say) into the
// clone and returns its head, or "" when the branch does not exist. It also
// records what ferry saw, which Push uses as its lease. A branch that fails
// ValidateBranch is an error, before any request.
func (r *Repository) FetchBranch(ctx context.Context, branch string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sha, err := r.fetchBranch(ctx, branch)
	return sha, redact(err, r.secrets)
}

func (r *Repository) fetchBranch(ctx context.Context, branch string) (string, error) {
	if err := ValidateBranch(branch); err != nil {
		return "", fmt.Errorf("repository %s: fetch: %w", r.name, err)
	}
	repo, err := r.open()
	if err != nil {
		return "", err
	}
	remoteSHA, err := r.lsRemote(ctx, repo, branch)
	if err != nil {
		return "", err
	}
	if remoteSHA.IsZero() {
		if err := repo.Storer.RemoveReference(trackingRef(branch)); err != nil {
			return "", fmt.Errorf("repository %s: %w", r.name, err)
		}
		return "", nil
	}
	if err := r.fetch(ctx, repo, branch); err != nil {
		return "", err
	}
	return remoteSHA.String(), nil
}

// Push sends the local branch to the remote with force-with-lease semantics:
// the remote branch is replaced only if it still points where ferry last saw
// it (FetchBranch, or the previous Push), or is created only if ferry saw it
// absent. A lost race returns an error matching ErrStale. A branch that fails
// ValidateBranch is an error, before any request.
func (r *Repository) Push(ctx context.Context, branch string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return redact(r.push(ctx, branch), r.secrets)
}

func (r *Repository) push(ctx context.Context, branch string) error {
	if err := ValidateBranch(branch); err != nil {
		return fmt.Errorf("repository %s: push: %w", r.name, err)
	}
	repo, err := r.open()
	if err != nil {
		return err
	}
	local, err := repo.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return fmt.Errorf("repository %s: push %s: no local commit on the branch: %w", r.name, branch, err)
	}
	expected := plumbing.ZeroHash
	if seen, err := repo.Reference(trackingRef(branch), true); err == nil {
		expected = seen.Hash()
	}
	remote, err := repo.Remote("origin")
	if err != nil {
		return fmt.Errorf("repository %s: %w", r.name, err)
	}
	src := plumbing.NewBranchReferenceName(branch)
	auth, err := r.authFor(ctx)
	if err != nil {
		return err
	}
	opts := &git.PushOptions{Auth: auth}
	if expected.IsZero() {
		// Seen absent: a plain (non-force) push of a new branch, which the
		// server refuses if the branch appeared meanwhile.
		opts.RefSpecs = []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", src, src))}
	} else {
		opts.RefSpecs = []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", src, src))}
		opts.ForceWithLease = &git.ForceWithLease{RefName: src, Hash: expected}
	}
	err = remote.PushContext(ctx, opts)
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		// Whatever go-git or the server said, the lease was lost if the
		// remote no longer holds what we expected.
		if now, lsErr := r.lsRemote(ctx, repo, branch); lsErr == nil && now != expected && now != local.Hash() {
			return fmt.Errorf("repository %s: push %s: %w (expected %s, found %s)", r.name, branch, ErrStale, short(expected.String()), short(now.String()))
		}
		return fmt.Errorf("repository %s: push %s: %w", r.name, branch, err)
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(trackingRef(branch), local.Hash())); err != nil {
		return fmt.Errorf("repository %s: %w", r.name, err)
	}
	return nil
}
