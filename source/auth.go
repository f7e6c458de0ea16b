package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Auth holds a repository's credentials, as values. At most one of Token,
// TokenSource and SSHKey is set; none means anonymous.
type Auth struct {
	// Token is sent over HTTPS as GitHub expects it: basic auth with the user
	// x-access-token.
	Token string
	// TokenSource gives a token that changes, such as a GitHub App
	// installation's (which expires within the hour): it is called with the
	// operation's context before every operation that talks to the remote
	// (Head, Fetch, FetchBranch, Push), and its token is sent as Token is.
	// Its error fails the operation, wrapped; the tokens it returns never
	// appear in an error.
	TokenSource func(ctx context.Context) (string, error)
	// SSHKey is a PEM private key; KnownHosts is the content of a known_hosts
	// file, required with SSHKey: host keys are always checked.
	SSHKey     []byte
	KnownHosts []byte
}

// secrets returns the values that must never appear in an error.
func (a Auth) secrets() []string {
	var s []string
	if a.Token != "" {
		s = append(s, a.Token)
	}
	if len(a.SSHKey) > 0 {
		s = append(s, string(a.SSHKey))
	}
	return s
}

// method builds go-git's auth for a repository; dir holds the known_hosts copy.
func (a Auth) method(name, dir string) (transport.AuthMethod, error) {
	switch {
	case a.Token != "" && len(a.SSHKey) > 0:
		return nil, fmt.Errorf("repository %s: auth has both a token and an SSH key; keep one", name)
	case a.TokenSource != nil && (a.Token != "" || len(a.SSHKey) > 0):
		return nil, fmt.Errorf("repository %s: auth has a token source and a token or an SSH key; keep one", name)
	case a.TokenSource != nil:
		return nil, nil // per operation: Repository.authFor
	case a.Token != "":
		return &githttp.BasicAuth{Username: "x-access-token", Password: a.Token}, nil
	case len(a.SSHKey) > 0:
		keys, err := gitssh.NewPublicKeys("git", a.SSHKey, "")
		if err != nil {
			// The parser's message can quote key material; never pass it on.
			return nil, fmt.Errorf("repository %s: the SSH private key does not parse: give an unencrypted PEM or OpenSSH private key", name)
		}
		if len(a.KnownHosts) == 0 {
			return nil, fmt.Errorf("repository %s: an SSH key needs a known_hosts file (auth.knownHostsFile): host keys are always checked", name)
		}
		callback, err := knownHostsCallback(name, dir, a.KnownHosts)
		if err != nil {
			return nil, err
		}
		keys.HostKeyCallback = callback
		return keys, nil
	default:
		return nil, nil
	}
}

// knownHostsCallback checks host keys against the given known_hosts content.
// x/crypto's parser reads files, so the content is written to dir first.
func knownHostsCallback(name, dir string, content []byte) (ssh.HostKeyCallback, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("repository %s: %w", name, err)
	}
	path := filepath.Join(dir, name+".known_hosts")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		return nil, fmt.Errorf("repository %s: %w", name, err)
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("repository %s: known_hosts does not parse: %w", name, err)
	}
	return cb, nil
}

// redacted is an error whose message has had every secret removed. It answers
// errors.Is for its cause without exposing the cause's text.
type redacted struct {
	msg   string
	cause error
}

func (e *redacted) Error() string        { return e.msg }
func (e *redacted) Is(target error) bool { return errors.Is(e.cause, target) }

// redact returns err with each secret replaced by "[redacted]". It is the last
// step before an error leaves the package.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return &redacted{msg: msg, cause: err}
}
