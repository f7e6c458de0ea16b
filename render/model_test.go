package render

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const validModel = `apiVersion: ferry.dev/v1alpha1
kind: Model
metadata:
  name: fraud
spec:
  version: "1.0.0"
  artifact:
    uri: s3://models/fraud/1.0.0
  format: sklearn
  server:
    image: registry.example/mlserver:1.6
`

// modelTree is a checkout whose environment pins one Model with a patch.
func modelTree(t *testing.T, model, pin string) string {
	t.Helper()
	root, _ := sandbox(t)
	files := map[string]string{
		"models/fraud/kustomization.yaml": "resources: [model.yaml]\n",
		"models/fraud/model.yaml":         model,
		"env/kustomization.yaml":          "namespace: ml\nresources: [../models/fraud]\n",
	}
	if pin != "" {
		files["env/kustomization.yaml"] += "patches:\n- path: models.yaml\n"
		files["env/models.yaml"] = "apiVersion: ferry.dev/v1alpha1\nkind: Model\nmetadata:\n  name: fraud\n" + pin
	}
	return writeTree(t, root, files)
}

func TestBadModelsAreErrorsNamingFileObjectAndField(t *testing.T) {
	cases := []struct {
		name        string
		model, pin  string
		wantField   string
		wantMessage string
	}{
		{"an unknown field", validModel + "  colour: blue\n", "", "spec.colour", "unknown field"},
		{"an unknown nested field", strings.Replace(validModel, "    image:", "    imagePullPolicy: Always\n    image:", 1), "", "spec.server.imagePullPolicy", "unknown field"},
		{"a missing version", strings.Replace(validModel, "  version: \"1.0.0\"\n", "", 1), "", "spec.version", "Required value"},
		{"a missing artifact URI", strings.Replace(validModel, "    uri: s3://models/fraud/1.0.0\n", "", 1), "", "spec.artifact.uri", "Required value"},
		{"a bad URI scheme", strings.Replace(validModel, "s3://", "ftp://", 1), "", "spec.artifact.uri", "one of the schemes"},
		{"a bad digest", validModel, "spec:\n  artifact:\n    digest: md5:abc\n", "spec.artifact.digest", "sha256:"},
		{"a bad quantity", validModel + "  resources:\n    requests: {cpu: lots}\n", "", "spec.resources.requests[cpu]", "quantity"},
		{"an unknown format", strings.Replace(validModel, "sklearn", "keras", 1), "", "spec.format", "Unsupported value"},
		{"an unknown runtime", validModel + "  runtime: lambda\n", "", "spec.runtime", "Unsupported value"},
		{"a deployment without a server", strings.Split(validModel, "  server:")[0], "", "spec.server", "Required value"},
		{"kserve with a server image", validModel + "  runtime: kserve\n", "", "spec.server.image", "runtime kserve picks the server"},
		{"canary on a deployment", validModel + "  canary: {trafficPercent: 10}\n", "", "spec.canary", "kserve"},
		{"max below min", validModel + "  replicas: {min: 3, max: 2}\n", "", "spec.replicas.max", "must not be less than min"},
		{"a bad test timeout", validModel + "  tests:\n  - {name: smoke, image: t:1, timeout: soon}\n", "", "spec.tests[0].timeout", "duration"},
		{"a bad name", strings.Replace(validModel, "name: fraud", "name: Fraud_Detector", 1), "", "metadata.name", "RFC 1123"},
		{"a wrong type", strings.Replace(validModel, `version: "1.0.0"`, "version: [1]", 1), "", "spec.version", "must be a string"},
		{"a bad value in the environment's pin", validModel, "spec:\n  artifact:\n    uri: ftp://x/y\n", "spec.artifact.uri", "one of the schemes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := modelTree(t, tc.model, tc.pin)
			res, err := renderEnv(t, root)
			require.Error(t, err)
			assert.Nil(t, res)
			msg := err.Error()
			assert.Contains(t, msg, "models/fraud/model.yaml", "the file that declares the Model")
			if tc.pin != "" {
				assert.Contains(t, msg, "patched by env/models.yaml", "the file that pins it")
			}
			ref := "Model/ml/fraud"
			if strings.Contains(tc.model, "Fraud_Detector") {
				ref = "Model/ml/Fraud_Detector"
			}
			assert.Contains(t, msg, ref)
			assert.Contains(t, msg, tc.wantField)
			assert.Contains(t, msg, tc.wantMessage)
		})
	}
}

func TestEveryBadFieldIsReportedAtOnce(t *testing.T) {
	model := strings.NewReplacer("s3://", "ftp://", "sklearn", "keras").Replace(validModel)
	_, err := renderEnv(t, modelTree(t, model, ""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.artifact.uri")
	assert.Contains(t, err.Error(), "spec.format")
}

func TestAVersionChangeChangesThePodTemplateAndTheDigest(t *testing.T) {
	before, err := renderEnv(t, modelTree(t, validModel, ""))
	require.NoError(t, err)
	after, err := renderEnv(t, modelTree(t, validModel, "spec:\n  version: \"1.1.0\"\n  artifact:\n    uri: s3://models/fraud/1.1.0\n"))
	require.NoError(t, err)
	assert.NotEqual(t, before.Digest, after.Digest)

	template := func(r *Result) map[string]any {
		for _, o := range r.Objects {
			if o.GetKind() == "Deployment" {
				tpl, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "metadata", "annotations")
				return tpl
			}
		}
		t.Fatal("no Deployment rendered")
		return nil
	}
	assert.Equal(t, "1.0.0", template(before)[AnnotationVersion])
	assert.Equal(t, "1.1.0", template(after)[AnnotationVersion])
}

func TestAGeneratedObjectCollidingWithAManifestIsAnError(t *testing.T) {
	root := modelTree(t, validModel, "")
	writeTree(t, root, map[string]string{
		"env/kustomization.yaml": "namespace: ml\nresources: [../models/fraud, svc.yaml]\n",
		"env/svc.yaml":           "apiVersion: v1\nkind: Service\nmetadata: {name: fraud}\nspec: {ports: [{port: 80}]}\n",
	})
	_, err := renderEnv(t, root)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Service/ml/fraud: declared twice")
}
