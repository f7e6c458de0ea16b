package engine

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-gitops/ferry/internal/githubtest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
)

// End to end with real parts: a Git server, the kwok cluster, and a GitHub
// that answers as GitHub documents.

const ghToken = "ghs_PROMOTION_CANARY_7d1e"

// modelWithTests is fraud-detector declaring a smoke test (and the extra
// model.yaml lines given).
func modelWithTests(extra string) string {
	return `apiVersion: ferry.dev/v1alpha1
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
  tests:
    - name: smoke
      image: registry.example/model-smoke:1
      timeout: 1m
` + extra
}

// stagingPins is staging's pin file as a person keeps it: comments, a blank
// line, quoting.
const stagingPins = `# Staging runs what dev proved.
apiVersion: ferry.dev/v1alpha1
kind: Model
metadata:
  name: fraud-detector   # the fraud model
spec:
  version: "1.0.0"

  artifact:
    uri: s3://models/fraud/1.0.0   # weights
`

// promoting makes dev promote into staging, and staging into prod, by pull
// request on gh (or by branch when gh is nil).
func (h *harness) promoting(gh *githubtest.Server) func(*Options) {
	return func(o *Options) {
		r := &o.Repositories[0]
		r.Branch = "main"
		mode := PromoteBranch
		if gh != nil {
			c, err := promote.NewClient(promote.ClientOptions{APIURL: gh.URL, Token: ghToken, MaxWait: 2 * time.Second})
			require.NoError(h.t, err)
			r.GitHub = c.Repository(githubtest.DefaultOwner, githubtest.DefaultRepo)
			mode = PromotePullRequest
		}
		r.Environments[0].PromoteTo, r.Environments[0].Promotion = "staging", mode
		r.Environments[1].PromoteTo, r.Environments[1].Promotion = "prod", mode
		o.ShutdownGrace = time.Second
	}
}

func (h *harness) gitHub() *githubtest.Server {
	bare := h.srv.RepoDir("models")
	return githubtest.New(h.t, githubtest.Options{
		Tokens: []string{ghToken},
		BranchExists: func(b string) bool {
			_, err := testenv.Git(bare, "rev-parse", "--verify", "refs/heads/"+b)
			return err == nil
		},
		BranchSHA: func(b string) string { sha, _ := testenv.Git(bare, "rev-parse", "refs/heads/"+b); return sha },
	})
}

// onServer runs git in the Git server's bare repository.
func (h *harness) onServer(args ...string) string {
	h.t.Helper()
	out, err := testenv.Git(h.srv.RepoDir("models"), args...)
	require.NoError(h.t, err)
	return out
}

func promoted(rev string) func(Status) bool {
	return func(s Status) bool {
		return s.Phase == Idle && s.Revision == rev && len(s.Promotions) > 0 && s.Promotions[0].Action != "skipped"
	}
}

func TestAVerifiedModelIsPromotedByOnePullRequestThatChangesOnlyItsPin(t *testing.T) {
	h := newHarness(t)
	gh := h.gitHub()
	head := h.commit(map[string]string{
		"models/fraud-detector/model.yaml": modelWithTests(""),
		"environments/staging/models.yaml": stagingPins,
		"environments/dev/models.yaml":     pin("1.1.0"),
	}, "fraud-detector 1.1.0 in dev, with a smoke test")
	h.start(h.promoting(gh))

	s := h.eventually("dev", promoted(head), "dev verified and promoted")
	require.Len(t, s.Tests, 1)
	assert.True(t, s.Tests[0].Passed, s.Tests[0].String())
	assert.Equal(t, head, s.Verified)
	p := s.Promotions[0]
	assert.Equal(t, "ferry/promote/fraud-detector/staging", p.Branch)
	assert.Equal(t, "created", p.Action)

	prs := gh.PullRequests()
	require.Len(t, prs, 1)
	pr := prs[0]
	assert.Equal(t, "Promote fraud-detector 1.1.0 to staging", pr.Title)
	assert.Equal(t, "main", pr.Base)
	assert.Equal(t, p.Branch, pr.Head)
	assert.ElementsMatch(t, []string{"ferry", "promotion"}, pr.Labels)
	for _, want := range []string{"| version | <code>1.0.0</code> | <code>1.1.0</code> |", "Proved in **dev** at commit `" + head + "`",
		"| fraud-detector/smoke | passed |", "<code>Deployment/" + h.prefix + "-staging/fraud-detector</code> changed"} {
		assert.Contains(t, pr.Body, want)
	}
	assert.NotContains(t, pr.Body, ghToken)

	assert.Equal(t, "environments/staging/models.yaml", h.onServer("diff", "--name-only", "main", p.Branch))
	assert.Equal(t, strings.NewReplacer(`"1.0.0"`, `"1.1.0"`, "fraud/1.0.0", "fraud/1.1.0").Replace(stagingPins),
		h.onServer("show", p.Branch+":environments/staging/models.yaml")+"\n", "comments, blank lines and quoting survive")
	statuses := gh.Statuses(head)
	require.NotEmpty(t, statuses)
	last := statuses[len(statuses)-1]
	for _, st := range statuses {
		if st.Context == "ferry/dev" {
			last = st
		}
	}
	assert.Equal(t, "success", last.State)

	// A newer version in dev updates the same branch and pull request.
	newer := h.commit(map[string]string{"environments/dev/models.yaml": pin("1.2.0")}, "fraud-detector 1.2.0 in dev")
	h.eng.Notify(h.repo)
	s = h.eventually("dev", promoted(newer), "the newer version promoted")
	prs = gh.PullRequests()
	require.Len(t, prs, 1, "the same pull request, updated")
	assert.Equal(t, "Promote fraud-detector 1.2.0 to staging", prs[0].Title)
	assert.Contains(t, h.onServer("show", p.Branch+":environments/staging/models.yaml"), `version: "1.2.0"`)

	// A drift check after success runs no test and opens nothing.
	jobs, err := cluster.Client.BatchV1().Jobs(h.prefix+"-dev").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	writes := countWrites(gh)
	h.eng.Resync()
	h.eventually("dev", func(s Status) bool { return len(s.History) >= 3 && s.Phase == Idle }, "the drift check ran")
	again, err := cluster.Client.BatchV1().Jobs(h.prefix+"-dev").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, again.Items, len(jobs.Items), "no test Job")
	assert.Equal(t, writes, countWrites(gh), "no GitHub write")
}

func countWrites(gh *githubtest.Server) int {
	n := 0
	for _, r := range gh.Requests() {
		if r.Method != http.MethodGet {
			n++
		}
	}
	return n
}

func TestAFailingTestStopsThePromotionAndTheCommitStatusNamesIt(t *testing.T) {
	h := newHarness(t)
	gh := h.gitHub()
	failing := strings.Replace(modelWithTests(""), "      timeout: 1m\n", "      timeout: 1m\n      env: [{name: "+testenv.FailEnv+", value: fail}]\n", 1)
	head := h.commit(map[string]string{"models/fraud-detector/model.yaml": failing, "environments/dev/models.yaml": pin("1.1.0")}, "a model whose test fails")
	h.start(h.promoting(gh))

	s := h.eventually("dev", func(s Status) bool { return s.Phase == Failed && s.Revision == head }, "the test failed")
	assert.Equal(t, StepTests, s.FailedStep)
	assert.Contains(t, s.LastError, "test fraud-detector/smoke failed")
	h.eventually("dev", func(Status) bool {
		for _, st := range gh.Statuses(head) {
			if st.Context == "ferry/dev" && st.State == "failure" && strings.Contains(st.Description, "fraud-detector/smoke") {
				return true
			}
		}
		return false
	}, "ferry/dev failure names the test")
	assert.Empty(t, gh.PullRequests(), "no promotion")
	assert.Empty(t, h.onServer("branch", "--list", "ferry/*"), "no promotion branch")
}

func TestAPendingRequiredCheckHoldsThePromotionUntilItIsGreen(t *testing.T) {
	h := newHarness(t)
	gh := h.gitHub()
	head := h.commit(map[string]string{
		"models/fraud-detector/model.yaml": modelWithTests("  promotion:\n    requiredChecks: [eval/accuracy]\n"),
		"environments/dev/models.yaml":     pin("1.1.0"),
	}, "a model that needs its evaluation")
	gh.SetCheckRun(head, "eval/accuracy", "in_progress", "")
	h.start(h.promoting(gh))

	h.eventually("dev", func(s Status) bool { return s.Phase == Checking && len(s.Checks) == 1 }, "dev waits for the check")
	assert.Empty(t, gh.PullRequests())
	gh.SetCheckRun(head, "eval/accuracy", "completed", "success")
	require.True(t, h.eng.NotifyChecks(h.repo), "as the check_run webhook does")
	s := h.eventually("dev", promoted(head), "promoted once green")
	assert.Equal(t, promote.CheckSuccess, s.Checks[0].State)
	require.Len(t, gh.PullRequests(), 1)
	assert.Contains(t, gh.PullRequests()[0].Body, "| eval/accuracy | success |")
}

func TestARestartBetweenThePushAndThePullRequestLeavesOnePullRequest(t *testing.T) {
	h := newHarness(t)
	gh := h.gitHub()
	h.commit(map[string]string{"environments/dev/models.yaml": pin("1.1.0")}, "bump dev")
	// GitHub never answers the create: ferry is stopped while waiting for it.
	gh.Inject(githubtest.Fault{Method: http.MethodPost, Path: "/repos/{o}/{r}/pulls", Hang: true})
	h.start(h.promoting(gh))
	h.eventually("dev", func(s Status) bool { return s.Phase == Promoting }, "dev promoting")
	branch := "ferry/promote/fraud-detector/staging"
	var pushed string
	h.eventually("dev", func(Status) bool {
		sha, err := testenv.Git(h.srv.RepoDir("models"), "rev-parse", "--verify", "refs/heads/"+branch)
		pushed = sha
		return err == nil
	}, "the branch was pushed")

	h.start(h.promoting(gh)) // a restart
	head := h.onServer("rev-parse", "main")
	h.eventually("dev", promoted(head), "promoted after the restart")
	assert.Len(t, gh.PullRequests(), 1)
	assert.Equal(t, pushed, h.onServer("rev-parse", branch), "the branch already carried the change: not pushed again")
}

func TestPromotionByBranchPushesTheBranchOnly(t *testing.T) {
	h := newHarness(t)
	head := h.commit(map[string]string{"environments/dev/models.yaml": pin("1.1.0")}, "bump dev")
	h.start(h.promoting(nil))
	s := h.eventually("dev", promoted(head), "promoted")
	assert.Equal(t, "pushed", s.Promotions[0].Action)
	assert.Zero(t, s.Promotions[0].PR)
	assert.Contains(t, h.onServer("show", "ferry/promote/fraud-detector/staging:environments/staging/models.yaml"), `version: "1.1.0"`)

	// A person merges it; staging reconciles and promotes on to prod.
	wt := h.wt
	_, err := testenv.Git(wt.Dir, "fetch", "--quiet", "origin")
	require.NoError(t, err)
	_, err = testenv.Git(wt.Dir, "merge", "--quiet", "--no-edit", "origin/ferry/promote/fraud-detector/staging")
	require.NoError(t, err)
	wt.Push(t)
	merged := h.onServer("rev-parse", "main")
	h.eng.Notify(h.repo)
	s = h.eventually("staging", promoted(merged), "staging promoted into prod")
	assert.Equal(t, "1.1.0", s.Promotions[0].Version)
	assert.Equal(t, "prod", s.Promotions[0].To)
}
