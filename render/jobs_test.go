package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goldenRevision = "0123456789abcdef0123456789abcdef01234567"

// TestGoldenJobs expands the tests of each environment of testdata/modelrepo
// into Jobs at a fixed revision and compares them with <env>.jobs.yaml.
// Regenerate with: go test ./render -update
func TestGoldenJobs(t *testing.T) {
	for _, env := range []string{"dev", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			res, err := newRenderer(t).Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/" + env})
			require.NoError(t, err)
			jobs, err := Jobs(res.Tests, goldenRevision)
			require.NoError(t, err)
			got, err := YAML(jobs)
			require.NoError(t, err)

			golden := filepath.Join("testdata", "golden", env+".jobs.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file: run go test ./render -update")
			assert.Equal(t, string(want), string(got))
		})
	}
}

func TestAJobRunsOnceWithinItsTimeoutAndNamesModelTestAndCommit(t *testing.T) {
	res, err := newRenderer(t).Render(t.Context(), Request{Root: filepath.Join("testdata", "modelrepo"), Path: "environments/dev"})
	require.NoError(t, err)
	jobs, err := Jobs(res.Tests, goldenRevision)
	require.NoError(t, err)
	require.Len(t, jobs, 2)

	j := jobs[0]
	assert.Equal(t, "fraud-detector-smoke-0123456789ab", j.GetName())
	assert.Equal(t, "ml-dev", j.GetNamespace())
	assert.Equal(t, map[string]string{"team": "risk", LabelModel: "fraud-detector", LabelTest: "smoke"}, j.GetLabels())
	assert.Equal(t, "1.4.0", j.GetAnnotations()[AnnotationVersion])
	spec := j.Object["spec"].(map[string]any)
	assert.EqualValues(t, 0, spec["backoffLimit"], "a failed test is not retried")
	assert.EqualValues(t, 300, spec["activeDeadlineSeconds"], "the test's 5m timeout")
	pod := spec["template"].(map[string]any)["spec"].(map[string]any)
	assert.Equal(t, "Never", pod["restartPolicy"])
	env := pod["containers"].([]any)[0].(map[string]any)["env"].([]any)
	var names []string
	for _, e := range env {
		names = append(names, e.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"MODEL_NAME", "MODEL_VERSION", "MODEL_URI", "MODEL_DIGEST", "MODEL_ENDPOINT"}, names)
}

func TestJobNamesStayWithin63CharactersAndApart(t *testing.T) {
	long := strings.Repeat("m", 63)
	a := JobName(long, "smoke", goldenRevision)
	b := JobName(long, "smoke-2", goldenRevision)
	assert.LessOrEqual(t, len(a), 63)
	assert.LessOrEqual(t, len(b), 63)
	assert.NotEqual(t, a, b, "cut names still differ")
	assert.True(t, strings.HasSuffix(a, "-0123456789ab"), "the commit stays readable: %s", a)
	assert.Equal(t, "m-t-0123456789ab", JobName("m", "t", goldenRevision))
}
