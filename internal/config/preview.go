package config

import (
	"fmt"
	"os"

	"github.com/ferry-gitops/ferry/source"
)

// RepositoryPreview configures pull request previews of a repository
// (docs/preview.md).
type RepositoryPreview struct {
	// Auth are read-only credentials for fetching pull request heads
	// (refs/pull/N/head), a fork's included: a read-only token or a
	// read-only deploy key, never the repository's own auth, which can push.
	// Unset, pull requests are fetched anonymously, which works for a public
	// repository. A GitHub App is not supported here yet.
	Auth *Auth `json:"auth,omitempty"`
}

// EnvironmentPreview configures what a pull request preview shows of an
// environment.
type EnvironmentPreview struct {
	// ClusterDiff adds a server-side dry run of the pull request's head
	// against the environment's live cluster, so drift and admission
	// rejections show before merge. Off by default: it reads the cluster
	// on every push to every pull request.
	ClusterDiff bool `json:"clusterDiff,omitempty"`
}

// validatePreview checks repositories[i].preview.
func (r Repository) validatePreview(key string, getenv func(string) string) []error {
	if r.Preview == nil || r.Preview.Auth == nil {
		return nil
	}
	a := *r.Preview.Auth
	key += ".preview.auth"
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	if a.GitHubApp != nil {
		add(key+".githubApp", "a GitHub App is not supported for previews yet; give a read-only token (tokenEnv, tokenFile) or deploy key (sshKeyFile)")
	}
	if a.TokenEnv == "" && a.TokenFile == "" && a.SSHKeyFile == "" && a.GitHubApp == nil {
		add(key, "empty; give a read-only token (tokenEnv, tokenFile) or deploy key (sshKeyFile), or leave preview.auth out to fetch anonymously")
	}
	own := r.Auth
	if (a.TokenEnv != "" && a.TokenEnv == own.TokenEnv) || (a.TokenFile != "" && a.TokenFile == own.TokenFile) || (a.SSHKeyFile != "" && a.SSHKeyFile == own.SSHKeyFile) {
		add(key, "the same credentials as the repository's auth, which push promotions; previews fetch untrusted pull requests with read-only credentials only")
	}
	return append(errs, a.validate(key, getenv)...)
}

// PreviewAuth reads the read-only credentials pull requests are fetched
// with; the zero source.Auth (anonymous) when preview.auth is unset.
func (r Repository) PreviewAuth(getenv func(string) string) (source.Auth, error) {
	var out source.Auth
	if r.Preview == nil || r.Preview.Auth == nil {
		return out, nil
	}
	a := *r.Preview.Auth
	if a.TokenEnv != "" || a.TokenFile != "" {
		token, err := secretValue("repository "+r.Name+" preview token", a.TokenEnv, a.TokenFile, getenv)
		if err != nil {
			return out, err
		}
		out.Token = token
	}
	if a.SSHKeyFile != "" {
		key, err := os.ReadFile(a.SSHKeyFile)
		if err != nil {
			return out, fmt.Errorf("repository %s: read preview.auth.sshKeyFile: %w", r.Name, err)
		}
		hosts, err := os.ReadFile(a.KnownHostsFile)
		if err != nil {
			return out, fmt.Errorf("repository %s: read preview.auth.knownHostsFile: %w", r.Name, err)
		}
		out.SSHKey, out.KnownHosts = key, hosts
	}
	return out, nil
}
