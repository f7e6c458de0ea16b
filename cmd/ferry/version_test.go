package main

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionPrintsVersionCommitAndGo(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"version"}, &out, &errOut))
	assert.Contains(t, out.String(), "ferry "+version)
	assert.Contains(t, out.String(), "commit "+commit)
	assert.Contains(t, out.String(), runtime.Version())
	assert.Empty(t, errOut.String())
}

func TestUnknownCommandIsAnError(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"frobnicate"}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "frobnicate")
}
