package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-gitops/ferry/source"
)

// WebhookSecrets returns the webhook secrets: the current one, then the
// previous one during a rotation. Nothing is returned when webhooks are off.
// Only ferry serve needs them: the other commands run without.
func (c *Config) WebhookSecrets(getenv func(string) string) ([][]byte, error) {
	if c.Webhook.Disabled {
		return nil, nil
	}
	var secrets [][]byte
	current, err := secretValue("webhook", c.Webhook.SecretEnv, c.Webhook.SecretFile, getenv)
	if err != nil {
		key := "webhook.secretEnv"
		if c.Webhook.SecretEnv == "" {
			key = "webhook.secretFile"
		}
		return nil, fmt.Errorf("%s: %w; ferry serve needs the webhook secret (or webhook.disabled: true)", key, err)
	}
	secrets = append(secrets, []byte(current))
	if c.Webhook.PreviousSecretEnv != "" {
		if prev := getenv(c.Webhook.PreviousSecretEnv); prev != "" {
			secrets = append(secrets, []byte(prev))
		}
	}
	return secrets, nil
}

// DataDirFor returns where clones live: dataDir when set; else, for ferry
// serve, DefaultDataDir (a volume in a pod), and for the commands a person
// runs, ferry in their cache directory (~/.cache/ferry on Linux).
func (c *Config) DataDirFor(serve bool) (string, error) {
	if c.DataDir != "" {
		return c.DataDir, nil
	}
	if serve {
		return DefaultDataDir, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("dataDir: no cache directory to default to (%w); set dataDir in ferry.yaml", err)
	}
	return filepath.Join(cache, "ferry"), nil
}

// GitHubToken returns the token API calls for the repository carry: the
// same as its Git auth.
func (r Repository) GitHubToken(getenv func(string) string) (string, error) {
	if r.Auth.TokenEnv == "" && r.Auth.TokenFile == "" {
		return "", nil
	}
	return secretValue("repository "+r.Name+" token", r.Auth.TokenEnv, r.Auth.TokenFile, getenv)
}

// SourceAuth reads the repository's credentials from where Auth says they are.
func (r Repository) SourceAuth(getenv func(string) string) (source.Auth, error) {
	var a source.Auth
	if r.Auth.TokenEnv != "" || r.Auth.TokenFile != "" {
		token, err := secretValue("repository "+r.Name+" token", r.Auth.TokenEnv, r.Auth.TokenFile, getenv)
		if err != nil {
			return a, err
		}
		a.Token = token
	}
	if r.Auth.SSHKeyFile != "" {
		key, err := os.ReadFile(r.Auth.SSHKeyFile)
		if err != nil {
			return a, fmt.Errorf("repository %s: read sshKeyFile: %w", r.Name, err)
		}
		hosts, err := os.ReadFile(r.Auth.KnownHostsFile)
		if err != nil {
			return a, fmt.Errorf("repository %s: read knownHostsFile: %w", r.Name, err)
		}
		a.SSHKey, a.KnownHosts = key, hosts
	}
	return a, nil
}

// secretValue reads a secret from an environment variable or a file; the
// errors name the source, never the value.
func secretValue(what, env, file string, getenv func(string) string) (string, error) {
	if env != "" {
		if v := getenv(env); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%s: environment variable %s is empty or unset", what, env)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: read %s: %w", what, file, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", fmt.Errorf("%s: no source configured", what)
}
