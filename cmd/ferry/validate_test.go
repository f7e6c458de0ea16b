package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

func TestValidateReportsEveryPolicyViolationOfEveryEnvironment(t *testing.T) {
	x := newE2E(t, "dev", "prod")
	x.wt.Write(t, "environments/prod/reader.yaml", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n")
	x.wt.Write(t, "environments/prod/kustomization.yaml",
		strings.Replace(testenv.EnvironmentKustomization(x.prefix, "prod"), "resources: [namespace.yaml,", "resources: [namespace.yaml, reader.yaml,", 1))
	x.wt.Commit(t, "prod grants itself a ClusterRole")
	x.wt.Push(t)
	config, err := os.ReadFile(x.config)
	require.NoError(t, err)
	dev := strings.Replace(string(config), "{name: dev, path: environments/dev,", "{name: dev, path: environments/dev, policy: {namespaces: [elsewhere]},", 1)
	require.NoError(t, os.WriteFile(x.config, []byte(dev), 0o600))

	var out, errOut bytes.Buffer
	err = run(t.Context(), []string{"validate", "--config", x.config}, &out, &errOut)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, x.repo+"/dev: the policy refuses 3 of 3 objects:\n")
	for _, ref := range []string{"Namespace/" + x.prefix + "-dev", "Deployment/" + x.prefix + "-dev/fraud-detector", "Service/" + x.prefix + "-dev/fraud-detector"} {
		assert.Contains(t, msg, "\n  "+ref+": policy: ", "every violation on its own line")
	}
	assert.Contains(t, msg, "namespace "+x.prefix+"-dev is not one "+x.repo+"/dev may write (policy.namespaces: elsewhere); to allow it, add "+x.prefix+"-dev to policy.namespaces of environment dev in ferry.yaml")
	assert.Contains(t, msg, x.repo+"/prod: the policy refuses 1 of 4 objects:\n  ClusterRole/reader: policy: the cluster-scoped kind ClusterRole.rbac.authorization.k8s.io is not one "+x.repo+"/prod may write (allowed: Namespace)")
	assert.NotContains(t, out.String(), "ok  ")

	allowed := strings.Replace(dev, "policy: {namespaces: [elsewhere]}", "policy: {namespaces: ["+x.prefix+"-dev]}", 1)
	allowed = strings.Replace(allowed, "{name: prod, path: environments/prod,", "{name: prod, path: environments/prod, policy: {clusterKinds: [Namespace, ClusterRole.rbac.authorization.k8s.io]},", 1)
	require.NoError(t, os.WriteFile(x.config, []byte(allowed), 0o600))
	out.Reset()
	require.NoError(t, run(t.Context(), []string{"validate", "--config", x.config}, &out, &errOut))
	assert.Contains(t, out.String(), "ok  "+x.repo+"/dev")
	assert.Contains(t, out.String(), "ok  "+x.repo+"/prod")
}
