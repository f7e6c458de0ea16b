package promote

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func evidence(diffs int, diffSize int) Evidence {
	e := Evidence{
		From: "dev", To: "staging", Commit: "0123456789ab",
		Before: Pin{Model: "fraud-detector", Version: "1.4.0", URI: "s3://m/1.4.0"},
		After:  Pin{Model: "fraud-detector", Version: "1.5.0", URI: "s3://m/1.5.0", Digest: "sha256:" + strings.Repeat("a", 64)},
		Health: "healthy, 3 object(s) Current",
		Tests:  []TestOutcome{{Name: "fraud-detector/smoke", Passed: true, Duration: 1200 * time.Millisecond}},
		Checks: Checks{{Name: "eval/accuracy", State: CheckSuccess}},
	}
	for i := range diffs {
		line := "+  value: " + strings.Repeat("x", 60) + "\n"
		e.Diff = append(e.Diff, ObjectChange{Ref: fmt.Sprintf("ConfigMap/ml/c%03d", i), Action: Changed, Diff: strings.Repeat(line, diffSize/len(line)+1)})
	}
	return e
}

func TestABodyShowsVersionsEvidenceAndTheDiff(t *testing.T) {
	b := Body(evidence(2, 200))
	for _, want := range []string{
		"| version | <code>1.4.0</code> | <code>1.5.0</code> |",
		"| digest | – | <code>sha256:aaaa",
		"Proved in **dev** at commit `0123456789ab`: healthy, 3 object(s) Current",
		"| fraud-detector/smoke | passed | 1.2s |",
		"| eval/accuracy | success |",
		"0 added, 2 changed, 0 removed.",
		"<details><summary><code>ConfigMap/ml/c000</code> changed</summary>",
		"```diff\n+  value:",
	} {
		assert.Contains(t, b, want)
	}
}

func TestABodyOverGitHubsLimitCutsWholeObjectsAndSaysWhich(t *testing.T) {
	b := Body(evidence(40, 4000))
	assert.LessOrEqual(t, len(b), MaxCommentBytes)
	assert.Contains(t, b, "| version |", "the table is kept")
	assert.Contains(t, b, "more object diff(s) left out to stay within GitHub's 65536-character limit")
	kept := strings.Count(b, "<details>")
	assert.Greater(t, kept, 5)
	assert.Less(t, kept, 40)
	assert.Contains(t, b, fmt.Sprintf("`ConfigMap/ml/c%03d`", kept), "the first object left out is named")
	for i := range kept {
		assert.Equal(t, 1, strings.Count(b, fmt.Sprintf("<code>ConfigMap/ml/c%03d</code>", i)), "a kept object is whole")
	}
	assert.Equal(t, strings.Count(b, "<details>"), strings.Count(b, "</details>"), "no section is cut in the middle")
}

func TestMarkdownInAManifestCannotBreakTheBody(t *testing.T) {
	e := evidence(0, 0)
	e.Diff = []ObjectChange{{Ref: "ConfigMap/ml/<b>x</b>", Action: Added, Diff: "+  readme: |\n+    ```\n+    | a | b |\n"}}
	e.Tests[0].Reason, e.Tests[0].Passed = "exit 1 | see logs", false
	b := Body(e)
	assert.Contains(t, b, "````diff", "a longer fence than the diff's own")
	assert.Contains(t, b, "<code>ConfigMap/ml/&lt;b&gt;x&lt;/b&gt;</code>")
	assert.Contains(t, b, `failed: exit 1 \| see logs`)
}
