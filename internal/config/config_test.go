package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const valid = `
listen: ":8080"
resync: "@every 5m"
webhook:
  secretEnv: FERRY_WEBHOOK_SECRET
repositories:
  - name: ml-models
    url: https://github.com/acme/ml-models.git
    auth: {tokenEnv: GITHUB_TOKEN}
    environments:
      - {name: dev, path: environments/dev, cluster: {context: dev}, promoteTo: staging}
      - {name: staging, path: environments/staging, cluster: {context: staging}, promoteTo: prod}
      - {name: prod, path: environments/prod, cluster: {context: prod}}
`

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var fullEnv = env(map[string]string{"FERRY_WEBHOOK_SECRET": "hook-CANARY", "GITHUB_TOKEN": "ghs_CANARY"})

func TestAValidConfigLoadsWithDefaults(t *testing.T) {
	c, err := Parse([]byte(valid), fullEnv)
	require.NoError(t, err)
	assert.Equal(t, "main", c.Repositories[0].Branch)
	assert.Equal(t, "pull-request", c.Repositories[0].Environments[0].Promotion)
	assert.Equal(t, DefaultAdminListen, c.AdminListen)
	serveDir, err := c.DataDirFor(true)
	require.NoError(t, err)
	assert.Equal(t, DefaultDataDir, serveDir)
	cliDir, err := c.DataDirFor(false)
	require.NoError(t, err)
	assert.NotEqual(t, DefaultDataDir, cliDir, "a person running the CLI cannot write /var/lib/ferry")
	_, owner, repo, ok := c.Repositories[0].GitHubRepo()
	assert.True(t, ok)
	assert.Equal(t, "acme/ml-models", owner+"/"+repo, "taken from the github.com URL")

	secrets, err := c.WebhookSecrets(fullEnv)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("hook-CANARY")}, secrets)
	auth, err := c.Repositories[0].SourceAuth(fullEnv)
	require.NoError(t, err)
	assert.Equal(t, "ghs_CANARY", auth.Token)
}

func TestEachCheckNamesTheKeyAndWhatIsExpected(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(string) string
		env     func(string) string
		key     string
		message string
	}{
		{"an unknown key", func(s string) string { return s + "colour: blue\n" }, fullEnv, "colour", "unknown field"},
		{"an unknown nested key", func(s string) string {
			return strings.Replace(s, "promoteTo: staging}", "promoteTo: staging, flavour: x}", 1)
		}, fullEnv, "repositories[0].environments[0].flavour", "unknown field"},
		{"a duplicate repository", func(s string) string {
			return s + "  - name: ml-models\n    url: https://github.com/acme/x.git\n    environments: [{name: dev, path: d}]\n"
		}, fullEnv, "repositories[1].name", "unique"},
		{"a duplicate environment", func(s string) string {
			return strings.Replace(s, "{name: prod, path", "{name: dev, path", 1)
		}, fullEnv, "repositories[0].environments[2].name", "unique"},
		{"a path outside the repository", func(s string) string {
			return strings.Replace(s, "path: environments/prod", "path: ../prod", 1)
		}, fullEnv, "repositories[0].environments[2].path", "inside the repository"},
		{"an absolute path", func(s string) string {
			return strings.Replace(s, "path: environments/prod", "path: /etc", 1)
		}, fullEnv, "repositories[0].environments[2].path", "inside the repository"},
		{"promoteTo an unknown environment", func(s string) string {
			return strings.Replace(s, "promoteTo: prod", "promoteTo: qa", 1)
		}, fullEnv, "repositories[0].environments[1].promoteTo", `"qa" is not an environment of ml-models`},
		{"a promotion cycle", func(s string) string {
			return strings.Replace(s, "cluster: {context: prod}}", "cluster: {context: prod}, promoteTo: dev}", 1)
		}, fullEnv, "promoteTo", "cycle: dev -> staging -> prod -> dev"},
		{"a bad cron spec", func(s string) string { return strings.Replace(s, "@every 5m", "every five minutes", 1) }, fullEnv, "resync", "not a cron spec"},
		{"a bad listen address", func(s string) string { return strings.Replace(s, `":8080"`, `"eighty"`, 1) }, fullEnv, "listen", "not an address"},
		{"an admin address equal to the public one", func(s string) string { return s + "adminListen: \":8080\"\n" }, fullEnv, "adminListen", "must not be served on the public port"},
		{"pull-request promotion without GitHub", func(s string) string {
			return strings.Replace(s, "https://github.com/acme/ml-models.git", "https://git.example.com/ml-models.git", 1)
		}, fullEnv, "repositories[0].environments[0].promotion", "use promotion: branch"},
		{"pull-request promotion without a token", func(s string) string {
			return strings.Replace(s, "    auth: {tokenEnv: GITHUB_TOKEN}\n", "", 1)
		}, fullEnv, "repositories[0].environments[0].promotion", "needs a GitHub token"},
		{"a GitHub API URL that is not https", func(s string) string {
			return strings.Replace(s, "    auth: {tokenEnv", "    github: {apiURL: \"ftp://ghe.example.com/\"}\n    auth: {tokenEnv", 1)
		}, fullEnv, "repositories[0].github.apiURL", "not an https URL"},
		{"webhooks without a secret source", func(s string) string {
			return strings.Replace(s, "  secretEnv: FERRY_WEBHOOK_SECRET\n", "  secretEnv: \"\"\n", 1)
		}, fullEnv, "webhook.secretEnv", "no secret"},
		{"an unset token", func(s string) string { return s }, env(map[string]string{"FERRY_WEBHOOK_SECRET": "x"}), "repositories[0].auth.tokenEnv", "GITHUB_TOKEN is empty or unset"},
		{"a URL with a token in it", func(s string) string {
			return strings.Replace(s, "https://github.com", "https://x-access-token:ghs_CANARY@github.com", 1)
		}, fullEnv, "repositories[0].url", "auth.tokenEnv"},
		{"a local path without allowLocal", func(s string) string {
			return strings.Replace(s, "https://github.com/acme/ml-models.git", "/srv/models", 1)
		}, fullEnv, "repositories[0].url", "allowLocal"},
		{"a branch with \"..\"", func(s string) string {
			return strings.Replace(s, "    auth: {tokenEnv", "    branch: main..x\n    auth: {tokenEnv", 1)
		}, fullEnv, "repositories[0].branch", `"main..x" is not a valid branch name: it contains ".."`},
		{"a branch that would inject a refspec", func(s string) string {
			return strings.Replace(s, "    auth: {tokenEnv", "    branch: \"main:refs/heads/evil\"\n    auth: {tokenEnv", 1)
		}, fullEnv, "repositories[0].branch", `"main:refs/heads/evil" is not a valid branch name`},
		{"an SSH key without known_hosts", func(s string) string {
			return strings.Replace(s, "auth: {tokenEnv: GITHUB_TOKEN}", "auth: {sshKeyFile: /dev/null}", 1)
		}, fullEnv, "repositories[0].auth.knownHostsFile", "host keys are always checked"},
		{"a bad promotion mode", func(s string) string {
			return strings.Replace(s, "cluster: {context: prod}}", "cluster: {context: prod}, promotion: email}", 1)
		}, fullEnv, "repositories[0].environments[2].promotion", "pull-request or branch"},
		{"no repositories", func(string) string { return "webhook: {disabled: true}\nrepositories: []\n" }, fullEnv, "repositories", "add at least one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.edit(valid)), tc.env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key+":")
			assert.Contains(t, err.Error(), tc.message)
			assert.NotContains(t, err.Error(), "ghs_CANARY", "a secret never appears in an error")
			assert.NotContains(t, err.Error(), "hook-CANARY")
		})
	}
}

func TestRelativePathsAreTakenFromTheConfigFilesDirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ferry.yaml")
	yaml := strings.Replace(valid, "cluster: {context: dev}", "cluster: {kubeconfig: .demo/kubeconfig, context: dev}", 1) + "dataDir: state\n"
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
	c, err := Load(file, fullEnv)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, ".demo", "kubeconfig"), c.Repositories[0].Environments[0].Cluster.Kubeconfig)
	assert.Equal(t, filepath.Join(dir, "state"), c.DataDir)
	assert.Empty(t, c.Repositories[0].Environments[1].Cluster.Kubeconfig, "unset stays unset: $KUBECONFIG, then in-cluster")
}

func TestOnlyServeNeedsTheWebhookSecret(t *testing.T) {
	noSecret := env(map[string]string{"GITHUB_TOKEN": "ghs_CANARY"})
	c, err := Parse([]byte(valid), noSecret)
	require.NoError(t, err, "sync, diff, validate, promote and preview run without it")
	_, err = c.WebhookSecrets(noSecret)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "webhook.secretEnv: webhook: environment variable FERRY_WEBHOOK_SECRET is empty or unset")
}

func TestAllProblemsAreReportedAtOnce(t *testing.T) {
	bad := strings.NewReplacer("@every 5m", "nonsense", `":8080"`, `"x"`, "promoteTo: prod", "promoteTo: qa").Replace(valid)
	_, err := Parse([]byte(bad), fullEnv)
	require.Error(t, err)
	for _, key := range []string{"resync:", "listen:", "promoteTo:"} {
		assert.Contains(t, err.Error(), key)
	}
}

func TestCoordinationIsCheckedLikeEveryOtherKey(t *testing.T) {
	c, err := Parse([]byte(valid+"coordination: {namespace: ferry-system, leaseDuration: 15s, tokenEnv: FERRY_RING_TOKEN}\n"), fullEnv)
	require.NoError(t, err)
	assert.Equal(t, DefaultRingListen, c.Coordination.Listen)
	assert.Equal(t, 15*time.Second, c.Coordination.LeaseDurationValue())

	_, err = Parse([]byte(valid+"coordination: {leaseDuration: 1500ms, listen: nowhere, advertise: \"ftp://x\", namespace: Ferry_System, ring: \"a ring\"}\n"), fullEnv)
	require.Error(t, err)
	for _, want := range []string{"coordination.leaseDuration: \"1500ms\" must be a whole number of seconds", "coordination.listen:", "coordination.advertise:", "coordination.tokenEnv: required", "coordination.namespace: \"Ferry_System\" is not a namespace name", "coordination.ring: \"a ring\" is not a label value"} {
		assert.Contains(t, err.Error(), want)
	}
}
