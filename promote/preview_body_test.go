package promote

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func preview(objects, size int) Preview {
	p := Preview{
		Repository: "models", Number: 7,
		Head: strings.Repeat("a", 40), Base: strings.Repeat("b", 40), MergeBase: strings.Repeat("c", 40),
		HeadRef: "refs/pull/7/head", BaseRef: "main",
		Environments: []EnvironmentPreview{
			{Name: "dev", Path: "environments/dev", Models: []ModelChange{{Name: "fraud-detector", Before: "1.0.0", After: "1.1.0"}},
				Tests: []TestChange{{Model: "fraud-detector", Name: "smoke", Action: Added}}},
			{Name: "staging", Path: "environments/staging", Unchanged: true, Models: []ModelChange{{Name: "fraud-detector", Before: "1.0.0", After: "1.0.0"}}},
			{Name: "prod", Path: "environments/prod", Unchanged: true, Models: []ModelChange{{Name: "fraud-detector", Before: "0.9.0", After: "0.9.0"}}},
		},
	}
	for i := range objects {
		line := "+  value: " + strings.Repeat("x", 60) + "\n"
		p.Environments[0].Objects = append(p.Environments[0].Objects, ObjectChange{Ref: fmt.Sprintf("ConfigMap/ml-dev/c%03d", i), Action: Changed, Diff: strings.Repeat(line, size/len(line)+1)})
	}
	return p
}

func TestAPreviewShowsATableOfEveryEnvironmentAndTheDiffsOfTheChangedOne(t *testing.T) {
	b := PreviewBody(preview(2, 200), MaxCommentBytes)
	require.True(t, strings.HasPrefix(b, PreviewMarker+"\n"))
	for _, want := range []string{
		"Merging this pull request changes 1 of 3 environment(s): dev.",
		"| dev | fraud-detector <code>1.0.0</code> → **<code>1.1.0</code>** | +0 ~2 −0 | ✅ changes |",
		"| staging | fraud-detector <code>1.0.0</code> | – | unchanged: no input touched |",
		"| prod | fraud-detector <code>0.9.0</code> | – | unchanged: no input touched |",
		"- **dev**: tests: <code>fraud-detector/smoke</code> added",
		"\n\n#### dev: rendered changes\n\n<details><summary><code>ConfigMap/ml-dev/c000</code> changed</summary>",
		"ferry previewed `aaaaaaaaaaaa` against the merge base `cccccccccccc`",
	} {
		assert.Contains(t, b, want)
	}
	assert.Equal(t, 1, strings.Count(b, "#### dev: rendered changes"), "one heading per environment")
}

func TestAPreviewOverTheLimitCutsWholeObjectsKeepsTheTableAndSaysWhat(t *testing.T) {
	p := preview(40, 4000)
	b := PreviewBody(p, MaxCommentBytes)
	assert.LessOrEqual(t, len(b), MaxCommentBytes)
	assert.Contains(t, b, "| staging |", "the table is kept")
	assert.Contains(t, b, "more object diff(s) left out to stay within GitHub's 65536-character limit")
	kept := strings.Count(b, "<details>")
	require.Greater(t, kept, 5)
	require.Less(t, kept, 40)
	assert.Contains(t, b, fmt.Sprintf("`dev: ConfigMap/ml-dev/c%03d`", kept), "the first object left out is named")
	for i := range kept {
		assert.Equal(t, 1, strings.Count(b, fmt.Sprintf("<code>ConfigMap/ml-dev/c%03d</code>", i)), "a kept object is whole")
	}
	for _, line := range strings.Split(b, "\n") {
		if strings.HasPrefix(line, "+  value:") {
			assert.Len(t, line, len("+  value: ")+60, "no line is cut")
		}
	}
	assert.Equal(t, strings.Count(b, "<details>"), strings.Count(b, "</details>"), "no section is cut in the middle")

	whole := PreviewBody(p, 0)
	assert.Equal(t, 40, strings.Count(whole, "<details>"), "ferry preview prints everything")
}

func TestPreviewErrorsComeBeforeDiffsAndFailTheStatusNamingTheEnvironmentAndFile(t *testing.T) {
	p := preview(40, 4000)
	p.Environments[2].Unchanged = false
	p.Environments[2].RenderError = "render environments/prod: environments/prod/kustomization.yaml: error converting YAML to JSON: yaml: line 1: did not find expected ','"
	b := PreviewBody(p, MaxCommentBytes)
	assert.Contains(t, b, "| prod | fraud-detector <code>0.9.0</code> | – | ❌ does not render: render environments/prod: environments/prod/kustomization.yaml")
	assert.Contains(t, b, "<details open><summary>prod: the head does not render</summary>", "an error is kept before the diffs that do not fit")
	assert.Contains(t, b, "**prod** would not deploy")

	s := PreviewStatus(p)
	assert.Equal(t, StateFailure, s.State)
	assert.Equal(t, PreviewContext, s.Context)
	assert.Equal(t, p.Head, s.SHA)
	assert.True(t, strings.HasPrefix(s.Description, "prod: render environments/prod: environments/prod/kustomization.yaml"), s.Description)
	assert.LessOrEqual(t, len([]rune(s.Description)), 140)

	p.Environments[2].RenderError = ""
	p.Environments[2].Policy = []string{"Deployment/kube-system/x: policy: namespace kube-system is not one models/prod may write", "Service/kube-system/x: policy: …"}
	s = PreviewStatus(p)
	assert.Equal(t, StateFailure, s.State)
	assert.True(t, strings.HasPrefix(s.Description, "prod: Deployment/kube-system/x: policy:"), s.Description)
	assert.Contains(t, PreviewBody(p, MaxCommentBytes), "❌ policy refuses 2 object(s)")
}

func TestAPassingPreviewSaysWhatChanges(t *testing.T) {
	s := PreviewStatus(preview(1, 10))
	assert.Equal(t, StateSuccess, s.State)
	assert.Equal(t, "3 environment(s) render and pass policy; changes dev", s.Description)

	p := preview(0, 0)
	p.Environments[0].Models[0].After, p.Environments[0].Tests = "1.0.0", nil
	assert.Equal(t, "3 environment(s) render and pass policy; none changes", PreviewStatus(p).Description)
}

func TestMarkdownInAManifestOrAnErrorCannotBreakThePreview(t *testing.T) {
	p := preview(0, 0)
	p.Environments[0].Objects = []ObjectChange{{Ref: "ConfigMap/ml/<b>x</b>", Action: Added, Diff: "+  readme: |\n+    ```\n+    | a | b |\n"}}
	p.Environments[1].Unchanged = false
	p.Environments[1].RenderError = "render environments/staging: bad | pipe ```` fence </details>"
	b := PreviewBody(p, MaxCommentBytes)
	assert.Contains(t, b, "````diff")
	assert.Contains(t, b, "`````text\nrender environments/staging: bad | pipe ```` fence </details>\n`````")
	assert.Contains(t, b, `bad \| pipe`)
	assert.Contains(t, b, "<code>ConfigMap/ml/&lt;b&gt;x&lt;/b&gt;</code>")
}
