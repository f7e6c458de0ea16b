package preview

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
)

// dryRun is a cluster whose server-side dry run answers as told and
// remembers which environments asked.
type dryRun struct {
	mu    sync.Mutex
	asked []string
	diffs []apply.ObjectDiff
	err   error
}

func (d *dryRun) Diff(_ context.Context, req apply.Request) ([]apply.ObjectDiff, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked = append(d.asked, req.Inventory.Environment)
	return d.diffs, d.err
}

func TestClusterDiffShowsDriftAndAdmissionRejectionsOfTheChangedEnvironments(t *testing.T) {
	f := newFixture(t, nil)
	cluster := &dryRun{
		diffs: []apply.ObjectDiff{
			{Ref: apply.Ref{Kind: "Namespace", Name: "pv-dev"}, Action: apply.Unchanged},
			{Ref: apply.Ref{Group: "apps", Kind: "Deployment", Namespace: "pv-dev", Name: "fraud-detector"}, Action: apply.Configured, Diff: "-  replicas: 3\n+  replicas: 1\n"},
		},
		err: errors.New("Service/pv-dev/fraud-detector: diff: admission webhook \"policy.example\" denied the request"),
	}
	for i := range f.repo.Environments {
		f.repo.Environments[i].Cluster = cluster
	}
	n, _ := f.openPR(pin("1.1.0"))

	p, err := Build(t.Context(), f.renders, f.repo, Target{Number: n})
	require.NoError(t, err)
	assert.Equal(t, []string{"dev"}, cluster.asked, "only an environment the change touches is dry-run")
	dev := p.Environments[0]
	require.NotNil(t, dev.Cluster)
	assert.Equal(t, []promote.ObjectChange{{Ref: "Deployment/pv-dev/fraud-detector", Action: "configured", Diff: "-  replicas: 3\n+  replicas: 1\n"}}, dev.Cluster.Objects)

	body := promote.PreviewBody(*p, promote.MaxCommentBytes)
	assert.Contains(t, body, "live cluster: 0 to create, 1 to configure, 0 to delete")
	assert.Contains(t, body, "<details open><summary>dev: the live cluster&#39;s dry run fails</summary>")
	assert.Contains(t, body, `admission webhook "policy.example" denied the request`)
	assert.Contains(t, body, "\n#### dev: against the live cluster (server-side dry run)\n\n<details><summary><code>Deployment/pv-dev/fraud-detector</code> configured</summary>")
	assert.Equal(t, promote.StateSuccess, promote.PreviewStatus(*p).State, "the status is about rendering and policy; the cluster's answer is shown, not judged")
}

func TestBuildPreviewsTwoRefsWithoutAPullRequest(t *testing.T) {
	f := newFixture(t, nil)
	f.wt.WriteAll(t, pin("2.0.0"))
	_, err := runGit(f, "checkout", "-q", "-b", "candidate")
	require.NoError(t, err)
	head := f.wt.Commit(t, "candidate")
	_, err = runGit(f, "push", "-q", "origin", "candidate")
	require.NoError(t, err)

	p, err := Build(t.Context(), f.renders, f.repo, Target{Head: "candidate"})
	require.NoError(t, err)
	assert.Equal(t, head, p.Head)
	assert.Equal(t, f.main, p.MergeBase)
	body := promote.PreviewBody(*p, 0)
	assert.Contains(t, body, "Merging `candidate` into `main` changes 1 of 3 environment(s): dev.")
	assert.True(t, strings.HasPrefix(body, promote.PreviewMarker))
}

func TestAPullRequestThatDoesNotExistIsErrRefNotFoundAndPostsNothing(t *testing.T) {
	f := newFixture(t, nil)
	_, err := Build(t.Context(), f.renders, f.repo, Target{Number: 42})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repository models: fetch pull request #42")
	assert.True(t, isFetchError(err))

	f.start(Options{})
	n := f.gh.OpenPR("ghost", "main", "no ref", "")
	f.notify(n, "opened", strings.Repeat("a", 40))
	f.eventually("the preview to be skipped", func() bool {
		return f.outcomes("skipped") == 1
	})
	assert.Empty(t, f.gh.Comments(n))
	assert.Empty(t, f.gh.Statuses(strings.Repeat("a", 40)))
}
