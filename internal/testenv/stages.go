package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// FailEnv is the environment variable that makes a test Job fail in a
// testenv cluster: a test whose container sets FailEnv=fail ends Failed, with
// exit code 1, where every other Job's pod completes. kwok runs no
// containers, so this is how tests and the demo ask for a failing test.
const FailEnv = "KWOK_OUTCOME"

// ferryStages are the kwok Stages testenv adds to kwok's defaults.
//
// ferry-test-pod-fails: a running pod of a Job whose container sets
// KWOK_OUTCOME=fail terminates with exit code 1. Its weight (1) makes kwok
// pick it over the default pod-complete Stage (weight 0), which matches the
// same pod.
const ferryStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ferry-test-pod-fails
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values: ['Job']
    - key: '.spec.containers.[].env.[] | select(.name == "` + FailEnv + `") | .value'
      operator: 'In'
      values: ['fail']
  weight: 1
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 1
            reason: Error
            message: "the test failed (` + FailEnv + `=fail)"
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      phase: Failed
`

// stagesDir holds kwok's default Stages, which hack/build-tools.sh copies
// from the kwok module next to the binaries.
func stagesDir() (string, error) {
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(bin), "kwok-stages"), nil
}

// writeKwokConfig writes the kwokctl configuration of a cluster: kwok's
// default Stages and testenv's own. A kwokctl configuration that names any
// Stage replaces kwok's defaults, so they are given too.
func writeKwokConfig(path string) error {
	dir, err := stagesDir()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, name := range []string{"node-initialize.yaml", "node-heartbeat-with-lease.yaml", "pod-ready.yaml", "pod-complete.yaml", "pod-delete.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("testenv: kwok's default stages are missing (%w): run %s", err, buildCommand)
		}
		buf.Write(bytes.TrimSpace(b))
		buf.WriteString("\n---\n")
	}
	buf.WriteString(ferryStages)
	return os.WriteFile(path, buf.Bytes(), 0o600)
}
