package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// buildCommand is what a developer runs to get the binaries BinDir points at.
const buildCommand = "make tools (or hack/build-tools.sh)"

// BinDir returns the directory that holds the control-plane binaries: the
// FERRY_TOOLS_BIN environment variable when set, else the versioned cache
// directory that hack/tools-bin.sh computes from hack/tools/versions.env.
func BinDir() (string, error) {
	if dir := os.Getenv("FERRY_TOOLS_BIN"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	versions, err := readVersions(filepath.Join(root, "hack", "tools", "versions.env"))
	if err != nil {
		return "", err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find tools cache: %w (set FERRY_TOOLS_BIN)", err)
	}
	name := fmt.Sprintf("k8s-%s_etcd-%s_kwok-%s_kustomize-%s",
		versions["KUBERNETES"], versions["ETCD"], versions["KWOK"], versions["KUSTOMIZE"])
	return filepath.Join(home, ".cache", "ferry", "tools", name, "bin"), nil
}

// Binary returns the path of one tool built by hack/build-tools.sh, or an error
// that says how to build it.
func Binary(name string) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if info, err := os.Stat(path); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("testenv: %s not found in %s: run %s to build the local control plane", name, dir, buildCommand)
	}
	return path, nil
}

// RepoRoot returns the top of the Ferry repository, found by walking up from the
// working directory (a package directory under `go test`) to hack/tools/versions.env.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "tools", "versions.env")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no hack/tools/versions.env above the working directory (set FERRY_TOOLS_BIN)")
		}
		dir = parent
	}
}

// readVersions parses the KEY=VALUE lines of versions.env, ignoring comments.
func readVersions(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read tool versions: %w", err)
	}
	defer f.Close()
	versions := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not KEY=VALUE", path, line)
		}
		versions[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, key := range []string{"KUBERNETES", "ETCD", "KWOK", "KUSTOMIZE"} {
		if versions[key] == "" {
			return nil, fmt.Errorf("%s: %s is not set", path, key)
		}
	}
	return versions, nil
}
