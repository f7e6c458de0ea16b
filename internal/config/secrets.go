package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/ferry-gitops/ferry/source"
)

// WebhookSecrets returns the webhook secrets: the current one, then the
// previous one during a rotation. Nothing is returned when webhooks are off.
func (c *Config) WebhookSecrets(getenv func(string) string) ([][]byte, error) {
	if c.Webhook.Disabled {
		return nil, nil
	}
	var secrets [][]byte
	current, err := secretValue("webhook", c.Webhook.SecretEnv, c.Webhook.SecretFile, getenv)
	if err != nil {
		return nil, err
	}
	secrets = append(secrets, []byte(current))
	if c.Webhook.PreviousSecretEnv != "" {
		if prev := getenv(c.Webhook.PreviousSecretEnv); prev != "" {
			secrets = append(secrets, []byte(prev))
		}
	}
	return secrets, nil
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
