package promote_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/githubtest"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/source"
)

const appID = 4711

// appWorld is a GitHub playing App appID (installed on acme as installation
// 7) and a Git server in front of it that takes only the App's current
// installation tokens, holding acme's models repository with one commit.
type appWorld struct {
	gh   *githubtest.Server
	git  *testenv.GitServer
	wt   *testenv.WorkTree
	url  string
	head string
	pem  []byte
}

func newAppWorld(t *testing.T, ttl time.Duration, prefix string) *appWorld {
	t.Helper()
	key, pem := githubtest.NewAppKey(t)
	gh := githubtest.New(t, githubtest.Options{App: &githubtest.AppOptions{
		ID: appID, PublicKey: &key.PublicKey, TokenTTL: ttl, TokenPrefix: prefix,
		Installations: []githubtest.AppInstallation{{ID: 7, Account: githubtest.DefaultOwner, Org: true}},
	}})
	git := testenv.NewGitServer(t, testenv.GitServerOptions{
		Username: "seed", Password: "seed-password", // the test's own clone
		Authorize: testenv.InstallationTokenAuth(gh.ValidInstallationToken),
	})
	url := git.CreateRepo(t, "models")
	wt := git.Clone(t, "models")
	wt.Write(t, "environments/dev/models.yaml", testenv.ModelPin("1.0.0"))
	wt.Write(t, "environments/staging/models.yaml", testenv.ModelPin("0.9.0"))
	head := wt.Commit(t, "first")
	wt.Push(t)
	return &appWorld{gh: gh, git: git, wt: wt, url: url, head: head, pem: pem}
}

// open opens the repository as the installation, its commits signed by the
// App's bot, as cmd/ferry wires it.
func (w *appWorld) open(t *testing.T, inst *promote.Installation) *source.Repository {
	t.Helper()
	src, err := source.New(source.Options{DataDir: t.TempDir(), Author: object.Signature{Name: "Ferry", Email: "ferry@example.com"}})
	require.NoError(t, err)
	repo, err := src.Open(source.RepoOptions{
		Name: "models", URL: w.url, Branch: "main", AllowLocal: true,
		Auth: source.Auth{TokenSource: inst.Token},
		Author: func(ctx context.Context) (object.Signature, error) {
			name, email, err := inst.Author(ctx)
			return object.Signature{Name: name, Email: email}, err
		},
	})
	require.NoError(t, err)
	return repo
}

func TestCloneFetchAndPromotionWorkThroughTheAppAcrossATokensExpiry(t *testing.T) {
	w := newAppWorld(t, 2*time.Second, "")
	app, err := promote.NewApp(promote.AppOptions{APIURL: w.gh.URL, ID: appID, PrivateKey: w.pem, RefreshBefore: 500 * time.Millisecond})
	require.NoError(t, err)
	inst := app.InstallationOf(githubtest.DefaultOwner)
	repo := w.open(t, inst)
	ctx := t.Context()

	head, err := repo.Head(ctx)
	require.NoError(t, err, "the clone authenticates with a minted token")
	require.Equal(t, w.head, head)
	require.Len(t, w.gh.InstallationTokens(), 1)

	w.wt.Write(t, "environments/dev/models.yaml", testenv.ModelPin("1.1.0"))
	next := w.wt.Commit(t, "dev 1.1.0")
	w.wt.Push(t)
	first := w.gh.InstallationTokens()[0]
	require.Eventually(t, func() bool { return !w.gh.ValidInstallationToken(first) }, 5*time.Second, 20*time.Millisecond,
		"waiting out the first token's expiry (2 s, set above)")
	head, err = repo.Fetch(ctx)
	require.NoError(t, err, "the expired token is replaced before the fetch, not after a failure")
	require.Equal(t, next, head)
	require.Len(t, w.gh.InstallationTokens(), 2)

	// The promotion: a branch pushed as the App, then its pull request.
	branch := promote.Branch("fraud-detector", "staging")
	_, err = repo.FetchBranch(ctx, branch)
	require.NoError(t, err)
	sha, err := repo.Commit(ctx, source.Change{Branch: branch, Base: head, Message: "Promote fraud-detector 1.1.0 to staging",
		Files: map[string][]byte{"environments/staging/models.yaml": []byte(testenv.ModelPin("1.1.0"))}})
	require.NoError(t, err)
	require.NoError(t, repo.Push(ctx, branch))
	author, err := testenv.Git(w.git.RepoDir("models"), "log", "-1", "--format=%an <%ae>", "refs/heads/"+branch)
	require.NoError(t, err)
	_, botID := w.gh.AppBot()
	assert.Equal(t, "ferry-app[bot] <"+strconv.FormatInt(botID, 10)+"+ferry-app[bot]@users.noreply.github.com>", author)

	client, err := promote.NewClient(promote.ClientOptions{APIURL: w.gh.URL, TokenSource: inst.Token})
	require.NoError(t, err)
	pr, err := client.Repository(githubtest.DefaultOwner, "models").EnsurePullRequest(ctx, promote.PullRequest{
		Head: branch, Base: "main", HeadSHA: sha, Title: promote.Title("fraud-detector", "1.1.0", "staging"), Body: "evidence",
	})
	require.NoError(t, err)
	assert.Equal(t, promote.PRCreated, pr.Action)
	minted := w.gh.InstallationTokens()
	for _, r := range w.gh.Requests() {
		if strings.HasPrefix(r.Path, "/repos/") {
			assert.Contains(t, minted, strings.TrimPrefix(r.Authorization, "Bearer "), "%s %s carries an installation token", r.Method, r.Path)
			assert.Less(t, r.Status, 300, "%s %s", r.Method, r.Path)
		}
	}
	assert.Equal(t, 1, count(w.gh, http.MethodGet, "/orgs/acme/installation"), "the owner was looked up once")
	assert.LessOrEqual(t, len(minted), 3, "one minting per token lifetime, not per operation")
}

func count(srv *githubtest.Server, method, path string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}
