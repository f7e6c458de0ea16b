package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withPreview gives the repository of valid a preview block and dev an
// environment preview, both in flow style ("" leaves one out).
func withPreview(repo, dev string) string {
	c := valid
	if dev != "" {
		c = strings.Replace(c, "promoteTo: staging}", "promoteTo: staging, preview: "+dev+"}", 1)
	}
	if repo != "" {
		c = strings.Replace(c, "    auth: {tokenEnv: GITHUB_TOKEN}\n", "    auth: {tokenEnv: GITHUB_TOKEN}\n    preview: "+repo+"\n", 1)
	}
	return c
}

func TestPreviewSettingsLoadAsWritten(t *testing.T) {
	getenv := env(map[string]string{"FERRY_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "ghs_CANARYwrite", "READ_TOKEN": "ghs_CANARYread"})
	c, err := Parse([]byte(withPreview(`{auth: {tokenEnv: READ_TOKEN}}`, `{clusterDiff: true}`)), getenv)
	require.NoError(t, err)
	r := c.Repositories[0]
	assert.True(t, r.Environments[0].Preview.ClusterDiff)
	assert.False(t, r.Environments[1].Preview.ClusterDiff, "off unless asked")
	auth, err := r.PreviewAuth(getenv)
	require.NoError(t, err)
	assert.Equal(t, "ghs_CANARYread", auth.Token, "the read token, not the repository's")

	c, err = Parse([]byte(valid), fullEnv)
	require.NoError(t, err)
	auth, err = c.Repositories[0].PreviewAuth(fullEnv)
	require.NoError(t, err)
	assert.Zero(t, auth, "no preview.auth: anonymous, never the repository's token")
}

func TestEachPreviewCheckNamesTheKeyAndWhatIsExpected(t *testing.T) {
	cases := []struct {
		name, repo, dev, key, message string
	}{
		{"an unknown environment key is refused", "", `{clusterDif: true}`, "clusterDif", "unknown field"},
		{"clusterDiff is a boolean", "", `{clusterDiff: "yes"}`, "clusterDiff", "bool"},
		{"an unknown repository key is refused", `{drafts: false}`, "", "drafts", "unknown field"},
		{"the repository's own token is not a read credential", `{auth: {tokenEnv: GITHUB_TOKEN}}`, "", "repositories[0].preview.auth", "push promotions"},
		{"an empty auth says what to give", `{auth: {}}`, "", "repositories[0].preview.auth", "read-only token"},
		{"a GitHub App is not supported yet", `{auth: {githubApp: {appID: 1, installationID: 2, privateKeyEnv: K}}}`, "", "repositories[0].preview.auth.githubApp", "not supported for previews yet"},
		{"the read token must be set", `{auth: {tokenEnv: READ_TOKEN}}`, "", "repositories[0].preview.auth.tokenEnv", "READ_TOKEN is empty or unset"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(withPreview(tc.repo, tc.dev)), fullEnv)
			require.Error(t, err)
			var line string
			for _, l := range strings.Split(err.Error(), "\n") {
				if strings.Contains(l, tc.key) {
					line = l
				}
			}
			require.NotEmpty(t, line, "no error names %s in:\n%v", tc.key, err)
			assert.Contains(t, line, tc.message)
		})
	}
}
