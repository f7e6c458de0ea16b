package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/githubtest"
)

// keyCanary is written into key files and variables; no error may show it.
const keyCanary = "KEYCANARY"

// appConfig is valid with auth.githubApp in place of the token, its key in
// key.pem beside ferry.yaml.
const appConfig = `
webhook: {disabled: true}
repositories:
  - name: ml-models
    url: https://github.com/acme/ml-models.git
    auth:
      githubApp: {appID: 4711, installationID: 7, privateKeyFile: key.pem}
    environments:
      - {name: dev, path: environments/dev, promoteTo: prod}
      - {name: prod, path: environments/prod}
`

// writeAppConfig writes ferry.yaml (from edit(appConfig)) and a good key.pem
// into a directory, and returns ferry.yaml's path and the key.
func writeAppConfig(t *testing.T, edit func(string) string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	_, pem := githubtest.NewAppKey(t)
	pem = append([]byte(keyCanary+" comment before the block\n"), pem...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), pem, 0o600))
	file := filepath.Join(dir, "ferry.yaml")
	require.NoError(t, os.WriteFile(file, []byte(edit(appConfig)), 0o600))
	return file, pem
}

func TestAGitHubAppLoadsWithItsKeyFromAFileOrTheEnvironment(t *testing.T) {
	file, pem := writeAppConfig(t, func(s string) string { return s })
	c, err := Load(file, env(nil))
	require.NoError(t, err, "pull-request promotion needs no token with an App")
	r := c.Repositories[0]
	assert.Equal(t, filepath.Join(filepath.Dir(file), "key.pem"), r.Auth.GitHubApp.PrivateKeyFile, "relative to ferry.yaml")
	key, err := r.GitHubAppKey(env(nil))
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(pem)), string(key))
	auth, err := r.SourceAuth(env(nil))
	require.NoError(t, err)
	assert.Empty(t, auth.Token, "Git gets its token from the App, wired by the caller")

	file, _ = writeAppConfig(t, func(s string) string {
		return strings.Replace(s, "installationID: 7, privateKeyFile: key.pem", "installationOwner: acme, privateKeyEnv: APP_KEY", 1)
	})
	getenv := env(map[string]string{"APP_KEY": string(pem)})
	c, err = Load(file, getenv)
	require.NoError(t, err)
	assert.Equal(t, "acme", c.Repositories[0].Auth.GitHubApp.InstallationOwner)
	key, err = c.Repositories[0].GitHubAppKey(getenv)
	require.NoError(t, err)
	assert.Equal(t, string(pem), string(key))
}

func TestEachGitHubAppCheckNamesTheKeyAndWhatIsExpected(t *testing.T) {
	const app = "installationID: 7, privateKeyFile: key.pem"
	replace := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	badKey := "-----BEGIN RSA PRIVATE KEY-----\n" + keyCanary + "notakey\n-----END RSA PRIVATE KEY-----\n"
	cases := []struct {
		name    string
		edit    func(string) string
		env     map[string]string
		key     string
		message string
	}{
		{"an App without an ID is refused", replace("appID: 4711, ", ""), nil,
			"repositories[0].auth.githubApp.appID", "required"},
		{"an installation given by ID and owner is refused", replace(app, "installationID: 7, installationOwner: acme, privateKeyFile: key.pem"), nil,
			"repositories[0].auth.githubApp", "installationID or installationOwner, not both"},
		{"an App without an installation is refused", replace(app, "privateKeyFile: key.pem"), nil,
			"repositories[0].auth.githubApp.installationID", "required (or installationOwner)"},
		{"an owner GitHub would not accept is refused", replace(app, "installationOwner: acme/models, privateKeyFile: key.pem"), nil,
			"repositories[0].auth.githubApp.installationOwner", "not a GitHub organisation or user name"},
		{"a key given by file and variable is refused", replace(app, app+", privateKeyEnv: APP_KEY"), map[string]string{"APP_KEY": "x"},
			"repositories[0].auth.githubApp", "privateKeyFile or privateKeyEnv, not both"},
		{"an App without a key is refused", replace(app, "installationID: 7"), nil,
			"repositories[0].auth.githubApp.privateKeyFile", "required (or privateKeyEnv)"},
		{"a key file that cannot be read is named", replace("key.pem", "missing.pem"), nil,
			"repositories[0].auth.githubApp.privateKeyFile", "missing.pem cannot be read"},
		{"a key file that does not parse is named, never shown", replace("key.pem", "bad.pem"), nil,
			"repositories[0].auth.githubApp.privateKeyFile", "bad.pem: the private key does not parse"},
		{"a key variable that does not parse is named, never shown", replace("privateKeyFile: key.pem", "privateKeyEnv: APP_KEY"), map[string]string{"APP_KEY": badKey},
			"repositories[0].auth.githubApp.privateKeyEnv", "environment variable APP_KEY: the private key does not parse"},
		{"an unset key variable is named", replace("privateKeyFile: key.pem", "privateKeyEnv: APP_KEY"), nil,
			"repositories[0].auth.githubApp.privateKeyEnv", "APP_KEY is empty or unset"},
		{"an App beside a token is refused", replace("    auth:\n", "    auth:\n      tokenEnv: GITHUB_TOKEN\n"), map[string]string{"GITHUB_TOKEN": "ghs_CANARY"},
			"repositories[0].auth", "githubApp cannot be combined with tokenEnv, tokenFile or sshKeyFile"},
		{"an App over SSH is refused", replace("https://github.com/acme/ml-models.git", "ssh://git@github.com/acme/ml-models.git"), nil,
			"repositories[0].url", "HTTPS only"},
		{"an App on an Enterprise host without its API URL is refused", replace("https://github.com/", "https://ghe.example.com/"), nil,
			"repositories[0].github.apiURL", "https://ghe.example.com/api/v3/"},
		{"an unknown key under githubApp is refused", replace(app, app+", installationId: 8"), nil,
			"installationId", "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file, _ := writeAppConfig(t, tc.edit)
			require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(file), "bad.pem"), []byte(badKey), 0o600))
			_, err := Load(file, env(tc.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key+":")
			assert.Contains(t, err.Error(), tc.message)
			assert.NotContains(t, err.Error(), keyCanary, "key material never appears in an error")
			assert.NotContains(t, err.Error(), "ghs_CANARY")
		})
	}
}
