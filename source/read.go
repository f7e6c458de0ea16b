package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxReadFile bounds ReadFile: it reads configuration (a pin file), never
// a model.
const maxReadFile = 8 << 20

// ReadFile returns the content of the file at path (a slash path from the
// repository root) in commit sha, which must have been fetched. A missing
// file is an error matching fs.ErrNotExist.
func (r *Repository) ReadFile(ctx context.Context, sha, path string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := r.readFile(ctx, sha, path)
	return b, redact(err, r.secrets)
}

func (r *Repository) readFile(ctx context.Context, sha, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	repo, err := r.open()
	if err != nil {
		return nil, err
	}
	c, err := r.commit(repo, sha)
	if err != nil {
		return nil, err
	}
	f, err := c.File(path)
	if errors.Is(err, object.ErrFileNotFound) {
		return nil, fmt.Errorf("repository %s@%s: %s: %w", r.name, short(sha), path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("repository %s@%s: %s: %w", r.name, short(sha), path, err)
	}
	if f.Size > maxReadFile {
		return nil, fmt.Errorf("repository %s@%s: %s: %d bytes is over the %d-byte limit", r.name, short(sha), path, f.Size, maxReadFile)
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("repository %s@%s: %s: %w", r.name, short(sha), path, err)
	}
	defer rd.Close()
	return io.ReadAll(io.LimitReader(rd, maxReadFile))
}

// Parents returns the parents of commit sha, which must have been fetched.
func (r *Repository) Parents(ctx context.Context, sha string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	repo, err := r.open()
	if err != nil {
		return nil, redact(err, r.secrets)
	}
	c, err := r.commit(repo, sha)
	if err != nil {
		return nil, redact(err, r.secrets)
	}
	out := make([]string, len(c.ParentHashes))
	for i, h := range c.ParentHashes {
		out[i] = h.String()
	}
	return out, nil
}
