package testenv

import (
	"fmt"
	"testing"
)

// ModelPin is an environment's models.yaml pinning fraud-detector to version.
func ModelPin(version string) string {
	return fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: Model
metadata:
  name: fraud-detector
spec:
  version: "%s"
  artifact:
    uri: s3://models/fraud/%s
`, version, version)
}

// ModelRepo returns the files of a model repository with one Model
// (fraud-detector, runtime deployment) and the given environments, each
// pinned to 1.0.0 and rendered into its own namespace nsPrefix-<env>.
func ModelRepo(nsPrefix string, envs ...string) map[string]string {
	files := map[string]string{
		"README.md": "# models\n",
		"models/fraud-detector/kustomization.yaml": "resources: [model.yaml]\n",
		"models/fraud-detector/model.yaml": `apiVersion: ferry.dev/v1alpha1
kind: Model
metadata:
  name: fraud-detector
spec:
  version: "1.0.0"
  artifact:
    uri: s3://models/fraud/1.0.0
  format: sklearn
  server:
    image: registry.example/mlserver:1.6
    port: 8080
    readinessPath: /v2/health/ready
`,
	}
	for _, env := range envs {
		files["environments/"+env+"/kustomization.yaml"] = EnvironmentKustomization(nsPrefix, env)
		files["environments/"+env+"/namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + nsPrefix + "-" + env + "\n"
		files["environments/"+env+"/models.yaml"] = ModelPin("1.0.0")
	}
	return files
}

// EnvironmentKustomization is the kustomization ModelRepo writes for env.
func EnvironmentKustomization(nsPrefix, env string) string {
	return "namespace: " + nsPrefix + "-" + env + "\nresources: [namespace.yaml, ../../models/fraud-detector]\npatches:\n- path: models.yaml\n"
}

// WriteAll writes every file of files.
func (w *WorkTree) WriteAll(t testing.TB, files map[string]string) {
	t.Helper()
	for path, content := range files {
		w.Write(t, path, content)
	}
}
