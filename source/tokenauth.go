package source

import (
	"context"
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// keptTokens bounds how many tokens of a token source a repository remembers
// to redact: enough for every one still alive (installation tokens live an
// hour, and are replaced shortly before).
const keptTokens = 8

// authFor returns the auth of one remote operation. With a token source, the
// current token is asked for now (go-git takes an AuthMethod per call), so a
// token that expired since the last operation is never sent; the token is
// remembered among the secrets errors are cleaned of. Callers hold r.mu.
func (r *Repository) authFor(ctx context.Context) (transport.AuthMethod, error) {
	if r.tokens == nil {
		return r.auth, nil
	}
	token, err := r.tokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("repository %s: token: %w", r.name, err)
	}
	if token == "" {
		return nil, fmt.Errorf("repository %s: token: the token source gave an empty token", r.name)
	}
	if !slices.Contains(r.secrets, token) {
		r.secrets = append(r.secrets, token)
		if len(r.secrets) > keptTokens {
			r.secrets = slices.Delete(r.secrets, 0, len(r.secrets)-keptTokens)
		}
	}
	return &githttp.BasicAuth{Username: "x-access-token", Password: token}, nil
}

// signature returns who signs the next commit: RepoOptions.Author when set,
// else Options.Author. Callers hold r.mu.
func (r *Repository) signature(ctx context.Context) (object.Signature, error) {
	if r.authorOf == nil {
		return r.author, nil
	}
	sig, err := r.authorOf(ctx)
	if err != nil {
		return object.Signature{}, fmt.Errorf("repository %s: commit author: %w", r.name, err)
	}
	if sig.Name == "" || sig.Email == "" {
		return object.Signature{}, fmt.Errorf("repository %s: commit author: a name and an email are needed, got %q <%s>", r.name, sig.Name, sig.Email)
	}
	return sig, nil
}
