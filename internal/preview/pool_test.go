package preview

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/githubtest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
)

func TestABumpInDevGetsOneCommentShowingDevChangedAndTheOthersNotRenderedAtTheHead(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{})
	n, head := f.openPR(pin("1.1.0"))
	f.notify(n, "opened", head)

	comments := f.waitPosted(n, head)
	require.Len(t, comments, 1)
	body := comments[0].Body
	assert.True(t, strings.HasPrefix(body, promote.PreviewMarker))
	for _, want := range []string{
		"Merging this pull request changes 1 of 3 environment(s): dev.",
		"| dev | fraud-detector <code>1.0.0</code> → **<code>1.1.0</code>** | +0 ~2 −0 | ✅ changes |",
		"| staging | fraud-detector <code>1.0.0</code> | – | unchanged: no input touched |",
		"| prod | fraud-detector <code>1.0.0</code> | – | unchanged: no input touched |",
		"<details><summary><code>Deployment/pv-dev/fraud-detector</code> changed</summary>",
		"-          value: 1.0.0\n+          value: 1.1.0",
	} {
		assert.Contains(t, body, want)
	}
	assert.Equal(t, []string{"environments/dev"}, f.renders.at(head), "staging and prod are not rendered at the head")
	s, _ := f.status(head)
	assert.Equal(t, promote.StateSuccess, s.State)
	assert.Equal(t, "3 environment(s) render and pass policy; changes dev", s.Description)
}

func TestASecondPushEditsTheSameComment(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{})
	n, first := f.openPR(pin("1.1.0"))
	f.notify(n, "opened", first)
	before := f.waitPosted(n, first)
	require.Len(t, before, 1)

	second := f.push(n, pin("1.2.0"))
	f.notify(n, "synchronize", second)
	after := f.waitPosted(n, second)
	require.Len(t, after, 1, "edited, never repeated")
	assert.Equal(t, before[0].ID, after[0].ID)
	assert.Contains(t, after[0].Body, "→ **<code>1.2.0</code>**")
	assert.NotContains(t, after[0].Body, "1.1.0")
}

func TestABrokenKustomizationFailsFerryPreviewNamingTheFile(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{})
	n, head := f.openPR(map[string]string{"environments/staging/kustomization.yaml": "resources: [namespace.yaml\n  bad: [\n"})
	f.notify(n, "opened", head)

	comments := f.waitPosted(n, head)
	s, _ := f.status(head)
	assert.Equal(t, promote.StateFailure, s.State)
	assert.True(t, strings.HasPrefix(s.Description, "staging: render environments/staging: environments/staging/kustomization.yaml:"), s.Description)
	require.Len(t, comments, 1)
	assert.Contains(t, comments[0].Body, "| staging | fraud-detector <code>1.0.0</code> | – | ❌ does not render: render environments/staging: environments/staging/kustomization.yaml")
	assert.Contains(t, comments[0].Body, "<details open><summary>staging: the head does not render</summary>")
	assert.Equal(t, []string{"environments/staging"}, f.renders.at(head))
}

func TestAPolicyRefusalFailsFerryPreviewNamingTheObject(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{})
	n, head := f.openPR(map[string]string{
		"environments/prod/kustomization.yaml": "namespace: pv-prod\nresources: [namespace.yaml, ../../models/fraud-detector, reader.yaml]\npatches:\n- path: models.yaml\n",
		"environments/prod/reader.yaml":        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: []\n",
	})
	f.notify(n, "opened", head)

	f.waitPosted(n, head)
	s, _ := f.status(head)
	assert.Equal(t, promote.StateFailure, s.State)
	assert.True(t, strings.HasPrefix(s.Description, "prod: ClusterRole/reader: policy: the cluster-scoped kind ClusterRole.rbac.authorization.k8s.io"), s.Description)
}

func TestADiffOverTheLimitIsCutAtObjectBoundariesWithANote(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{})
	var big strings.Builder
	resources := []string{"namespace.yaml", "../../models/fraud-detector"}
	files := map[string]string{}
	for i := range 60 {
		name := fmt.Sprintf("big-%02d.yaml", i)
		resources = append(resources, name)
		big.Reset()
		fmt.Fprintf(&big, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big-%02d}\ndata:\n", i)
		for j := range 30 {
			fmt.Fprintf(&big, "  key%02d: %s\n", j, strings.Repeat("v", 60))
		}
		files["environments/dev/"+name] = big.String()
	}
	files["environments/dev/kustomization.yaml"] = "namespace: pv-dev\nresources: [" + strings.Join(resources, ", ") + "]\npatches:\n- path: models.yaml\n"
	n, head := f.openPR(files)
	f.notify(n, "opened", head)

	comments := f.waitPosted(n, head)
	require.Len(t, comments, 1)
	body := comments[0].Body
	assert.LessOrEqual(t, len(body), promote.MaxCommentBytes)
	assert.Contains(t, body, "| dev | fraud-detector <code>1.0.0</code> | +60 ~0 −0 | ✅ changes |", "the table is kept")
	assert.Contains(t, body, "more object diff(s) left out to stay within GitHub's 65536-character limit")
	kept := strings.Count(body, "<details><summary><code>ConfigMap/pv-dev/big-")
	require.Greater(t, kept, 10)
	require.Less(t, kept, 60)
	assert.Equal(t, strings.Count(body, "<details>"), strings.Count(body, "</details>"), "no object is cut in the middle")
	for _, l := range lines(body) {
		if strings.HasPrefix(l, "+    key") {
			assert.Len(t, l, len("+    key00: ")+60, "no line is cut")
		}
	}
}

func TestSecretValuesNeverReachTheComment(t *testing.T) {
	const oldCanary, newCanary = "CANARY-old-s3cr3t", "CANARY-new-s3cr3t"
	secret := func(v string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: " + v + "}\n"
	}
	f := newFixture(t, map[string]string{
		"environments/dev/kustomization.yaml": "namespace: pv-dev\nresources: [namespace.yaml, ../../models/fraud-detector, secret.yaml]\npatches:\n- path: models.yaml\n",
		"environments/dev/secret.yaml":        secret(oldCanary),
	})
	f.start(Options{})
	n, head := f.openPR(map[string]string{"environments/dev/secret.yaml": secret(newCanary)})
	f.notify(n, "opened", head)

	comments := f.waitPosted(n, head)
	require.Len(t, comments, 1)
	body := comments[0].Body
	assert.Contains(t, body, "<code>Secret/pv-dev/creds</code> changed")
	assert.Contains(t, body, "token: '*** (changed)'")
	assert.NotContains(t, body, "CANARY")
	s, _ := f.status(head)
	assert.NotContains(t, s.Description, "CANARY")
}

func TestAForkPullRequestIsFetchedWithTheReadTokenOnlyAndNeverDryRun(t *testing.T) {
	f := newFixture(t, nil)
	cluster := &dryRun{}
	f.repo.Environments[0].Cluster = cluster // preview.clusterDiff: true
	f.start(Options{})
	n, head := f.openPR(pin("1.1.0")) // refs/pull/N/head only: no branch of the base repository holds it
	used := f.creds.Len()
	require.True(t, f.pool.Notify(Event{Repository: "models", Number: n, Action: "opened", BaseRef: "main", HeadSHA: head, Fork: true}))

	comments := f.waitPosted(n, head)
	require.Len(t, comments, 1)
	assert.Contains(t, comments[0].Body, "live cluster: not dry-run: the pull request comes from a fork")
	assert.Empty(t, cluster.asked, "a fork's head is never sent to the cluster")
	tokens := f.creds.Since(used)
	require.NotEmpty(t, tokens, "the preview fetched")
	for _, token := range tokens {
		assert.Equal(t, readToken, token, "only the read token reaches the Git server during a preview")
	}
	for _, r := range f.gh.Requests() {
		assert.NotContains(t, r.Authorization, writeToken)
	}
}

func TestAClosedPullRequestGetsNothingPosted(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{Delay: 300 * time.Millisecond})

	pending, head := f.openPR(pin("1.1.0"))
	f.notify(pending, "opened", head)
	f.notify(pending, "closed", head) // inside the coalescing delay: the pending preview is dropped

	entered, release := f.renders.hold("environments/dev")
	defer release()
	running, head2 := f.openPR(pin("1.2.0"))
	f.notify(running, "opened", head2)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the second preview never started rendering")
	}
	f.notify(running, "closed", head2) // cancels the running preview's context
	time.Sleep(time.Second)
	release()
	time.Sleep(500 * time.Millisecond)

	assert.Empty(t, f.gh.Comments(pending))
	assert.Empty(t, f.gh.Comments(running))
	assert.Empty(t, f.gh.Statuses(head))
	assert.Empty(t, f.gh.Statuses(head2))
	assert.Empty(t, f.renders.at(head), "the pending preview never ran")
}

func TestFivePushesInABurstRenderOnceAtTheNewestHead(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{Delay: 500 * time.Millisecond})
	n := f.gh.OpenPR("feature", "main", "burst", "")
	var heads []string
	for i := range 5 {
		heads = append(heads, f.push(n, pin(fmt.Sprintf("1.1.%d", i))))
	}
	start := time.Now()
	for i, head := range heads {
		f.notify(n, "synchronize", head)
		require.Less(t, time.Since(start), 500*time.Millisecond, "the burst %d fits in the delay", i)
	}

	newest := heads[4]
	comments := f.waitPosted(n, newest)
	time.Sleep(300 * time.Millisecond) // a second run would have started by now
	require.Len(t, comments, 1)
	assert.Contains(t, comments[0].Body, "→ **<code>1.1.4</code>**")
	for _, head := range heads[:4] {
		assert.Empty(t, f.renders.at(head), "no render at an older head")
		assert.Empty(t, f.gh.Statuses(head))
	}
	assert.Equal(t, []string{"environments/dev"}, f.renders.at(newest), "one render at the newest head")
}

func TestAPullRequestIntoAnotherBranchIsNotPreviewed(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{})
	n, head := f.openPR(pin("1.1.0"))
	require.True(t, f.pool.Notify(Event{Repository: "models", Number: n, Action: "opened", BaseRef: "release", HeadSHA: head}))
	assert.False(t, f.pool.Notify(Event{Repository: "unknown", Number: n, Action: "opened", BaseRef: "main", HeadSHA: head}))
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, f.gh.Comments(n))
	assert.Empty(t, f.renders.at(head))
}

func TestAChangeToTheSharedModelPreviewsEveryEnvironmentAndItsTests(t *testing.T) {
	f := newFixture(t, nil)
	f.start(Options{})
	model := testenv.ModelRepo(nsPrefix)["models/fraud-detector/model.yaml"] +
		"  tests:\n  - {name: smoke, image: registry.example/smoke:1}\n"
	n, head := f.openPR(map[string]string{"models/fraud-detector/model.yaml": model})
	f.notify(n, "opened", head)

	comments := f.waitPosted(n, head)
	require.Len(t, comments, 1)
	for _, env := range environments {
		assert.Contains(t, comments[0].Body, "- **"+env+"**: tests: <code>fraud-detector/smoke</code> added")
	}
	assert.Contains(t, comments[0].Body, "Merging this pull request changes 3 of 3 environment(s): dev, staging, prod.")
	assert.Equal(t, []string{"environments/dev", "environments/staging", "environments/prod"}, f.renders.at(head))
}

func TestAPreviewGitHubFailedToTakeIsRetriedAndPostedOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.gh.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/issues/{n}/comments", Status: http.StatusBadGateway})
	f.start(Options{})
	n, head := f.openPR(pin("1.1.0"))
	f.notify(n, "opened", head)

	comments := f.waitPosted(n, head)
	assert.Len(t, comments, 1)
	assert.Equal(t, 1, f.outcomes("retried"))
	assert.Equal(t, 1, f.outcomes("posted"))
}
