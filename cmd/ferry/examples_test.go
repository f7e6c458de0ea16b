package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/config"
)

func TestTheExamplesStayValid(t *testing.T) {
	root := filepath.Join("..", "..", "examples")
	for _, env := range []string{"dev", "staging", "prod"} {
		var out, errOut bytes.Buffer
		require.NoError(t, run(t.Context(), []string{"render", "--root", filepath.Join(root, "model-repo"), filepath.Join(root, "model-repo", "environments", env)}, &out, &errOut), errOut.String())
		assert.Contains(t, out.String(), "kind: Deployment")
	}
	_, err := config.Load(filepath.Join(root, "ferry.yaml"), func(string) string { return "set" })
	require.NoError(t, err)
}
