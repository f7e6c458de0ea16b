package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
)

func TestEnvironmentsShareAnApplierPerClusterAndServiceAccountAndCarryTheirPolicy(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := unreachableKubeconfig(t, dir)
	cfg, err := config.Parse([]byte(`namespace: ferry
dataDir: `+filepath.Join(dir, "data")+`
webhook: {disabled: true}
repositories:
  - name: models
    url: `+dir+`
    allowLocal: true
    environments:
      - {name: a, path: a, cluster: {kubeconfig: `+kubeconfig+`}, policy: {serviceAccount: ml/applier}}
      - {name: b, path: b, cluster: {kubeconfig: `+kubeconfig+`}, policy: {serviceAccount: ml/applier, namespaces: [ml]}}
      - {name: c, path: c, cluster: {kubeconfig: `+kubeconfig+`}, policy: {serviceAccount: ml/other}}
      - {name: d, path: d, cluster: {kubeconfig: `+kubeconfig+`}}
`), func(string) string { return "" })
	require.NoError(t, err)
	a, err := build(cfg, forCLI)
	require.NoError(t, err)

	assert.Same(t, a.appliers["models/a"], a.appliers["models/b"], "one cluster and one account: one applier")
	assert.NotSame(t, a.appliers["models/a"], a.appliers["models/c"], "another account: another identity")
	assert.NotSame(t, a.appliers["models/a"], a.appliers["models/d"], "no account: ferry's own identity")
	envs := a.repos[0].Environments
	assert.Equal(t, &apply.Policy{Namespaces: []string{"ml"}, FerryNamespace: "ferry"}, envs[1].Policy)
	assert.Equal(t, &apply.Policy{FerryNamespace: "ferry"}, envs[3].Policy, "unset lists keep their defaults")
}

// unreachableKubeconfig writes, in dir, a kubeconfig for a cluster nobody
// answers at (port 1): for wiring that never calls the cluster.
func unreachableKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	return kubeconfig
}
