package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
)

// previewRepo is a model repository with pull request 3 bumping dev to
// 1.1.0 and a branch, candidate, bumping prod to 2.0.0; and a ferry.yaml
// for it whose clusters are never reached.
func previewRepo(t *testing.T) (config string) {
	t.Helper()
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "models")
	wt := srv.Clone(t, "models")
	wt.WriteAll(t, testenv.ModelRepo("cli", "dev", "staging", "prod"))
	main := wt.Commit(t, "models")
	wt.Push(t)
	_, err := testenv.Git(wt.Dir, "checkout", "-q", "-b", "pr", main)
	require.NoError(t, err)
	wt.Write(t, "environments/dev/models.yaml", testenv.ModelPin("1.1.0"))
	wt.Commit(t, "dev 1.1.0")
	_, err = testenv.Git(wt.Dir, "push", "-q", "origin", "HEAD:refs/pull/3/head")
	require.NoError(t, err)
	_, err = testenv.Git(wt.Dir, "checkout", "-q", "-b", "candidate", main)
	require.NoError(t, err)
	wt.Write(t, "environments/prod/models.yaml", testenv.ModelPin("2.0.0"))
	wt.Commit(t, "prod 2.0.0")
	_, err = testenv.Git(wt.Dir, "push", "-q", "origin", "candidate")
	require.NoError(t, err)

	dir := t.TempDir()
	kubeconfig := unreachableKubeconfig(t, dir)
	var envs strings.Builder
	for _, env := range []string{"dev", "staging", "prod"} {
		fmt.Fprintf(&envs, "      - {name: %s, path: environments/%s, cluster: {kubeconfig: %q}}\n", env, env, kubeconfig)
	}
	config = filepath.Join(dir, "ferry.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`dataDir: %q
webhook: {disabled: true}
repositories:
  - name: models
    url: %s/models.git
    allowLocal: true
    environments:
%s`, filepath.Join(dir, "data"), srv.URL, envs.String())), 0o600))
	return config
}

func TestPreviewPrintsTheReportOfAPullRequestOrOfTwoRefsAndExitsZero(t *testing.T) {
	config := previewRepo(t)

	var out, errs bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"preview", "--config", config, "--pr", "3"}, &out, &errs), errs.String())
	assert.True(t, strings.HasPrefix(out.String(), promote.PreviewMarker))
	assert.Contains(t, out.String(), "| dev | fraud-detector <code>1.0.0</code> → **<code>1.1.0</code>** | +0 ~2 −0 | ✅ changes |")
	assert.Contains(t, out.String(), "| prod | fraud-detector <code>1.0.0</code> | – | unchanged: no input touched |")

	out.Reset()
	require.NoError(t, run(t.Context(), []string{"preview", "--config", config, "--head", "candidate"}, &out, &errs), errs.String())
	assert.Contains(t, out.String(), "Merging `candidate` into `main` changes 1 of 3 environment(s): prod.")
	assert.Contains(t, out.String(), "| prod | fraud-detector <code>1.0.0</code> → **<code>2.0.0</code>**")
}

func TestPreviewSaysWhichFlagsItTakes(t *testing.T) {
	for _, args := range [][]string{
		{"preview"},
		{"preview", "--pr", "3", "--head", "x"},
		{"preview", "--pr", "3", "--base", "main"},
		{"preview", "--pr", "-1"},
	} {
		err := run(t.Context(), args, &bytes.Buffer{}, &bytes.Buffer{})
		assert.Error(t, err, "%v", args)
	}
}
