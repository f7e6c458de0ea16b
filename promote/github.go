package promote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// DefaultAPIURL is GitHub's REST API; GitHub Enterprise Server serves it at
// https://HOST/api/v3/.
const DefaultAPIURL = "https://api.github.com/"

// ClientOptions configures a Client.
type ClientOptions struct {
	// APIURL is the REST API's base URL; "" means DefaultAPIURL.
	APIURL string
	// Token authenticates every call. It is sent only to APIURL's host and
	// never appears in an error.
	Token string
	// TokenSource, instead of Token, gives the token for each request: a
	// GitHub App installation's (Installation.Token), which expires and is
	// replaced. It is called with the request's context before every request
	// to APIURL's host; its error is the call's. The tokens it returns are
	// treated as Token is.
	TokenSource func(ctx context.Context) (string, error)
	// MaxWait bounds how long one call waits for a rate limit to lift, as
	// GitHub's Retry-After or X-RateLimit-Reset says; a longer wait is not
	// waited out but returned as a transient error. 0 means one minute.
	MaxWait time.Duration
	// Retries bounds how often one call is tried again after a rate limit, a
	// 5xx or a network error (reads only for the last two: a write that
	// failed that way may have happened, and is looked up instead). 0 means 3.
	Retries int
	// Timeout bounds one HTTP request; 0 means 30 seconds.
	Timeout time.Duration
	// Transport is the HTTP transport under the retries; nil means
	// http.DefaultTransport. Tests use it to count requests.
	Transport http.RoundTripper
}

// Client talks to one GitHub API with one token (or one token source). Reads run concurrently;
// writes are serialised, as GitHub asks of integrations that write (its
// secondary rate limits punish concurrent writes with the same token).
// It is safe for concurrent use.
type Client struct {
	gh      *github.Client
	secrets *secrets
	writes  sync.Mutex
}

// NewClient returns a Client.
func NewClient(opts ClientOptions) (*Client, error) {
	base, err := apiBaseURL(opts.APIURL)
	if err != nil {
		return nil, err
	}
	if opts.Token != "" && opts.TokenSource != nil {
		return nil, errors.New("github client: give a Token or a TokenSource, not both")
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = time.Minute
	}
	if opts.Retries <= 0 {
		opts.Retries = 3
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	var rt http.RoundTripper = &retryTransport{base: opts.Transport, maxWait: opts.MaxWait, retries: opts.Retries, timeout: opts.Timeout}
	c := &Client{secrets: newSecrets(opts.Token)}
	switch {
	case opts.TokenSource != nil:
		rt = &authTransport{base: rt, host: base.Host, token: opts.TokenSource, sent: c.secrets}
	case opts.Token != "":
		token := opts.Token
		rt = &authTransport{base: rt, host: base.Host, token: func(context.Context) (string, error) { return token, nil }}
	}
	c.gh = github.NewClient(&http.Client{Transport: rt, CheckRedirect: sameHostRedirects(base.Host)})
	c.gh.BaseURL = base
	c.gh.UserAgent = "ferry"
	return c, nil
}

// apiBaseURL parses a REST API base URL ("" means DefaultAPIURL) and gives
// it the trailing slash go-github needs.
func apiBaseURL(apiURL string) (*url.URL, error) {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	base, err := url.Parse(apiURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("github api url %q: expected https://api.github.com/ or https://HOST/api/v3/", apiURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	return base, nil
}

// Repository returns the API of one repository, sharing the client's
// connection, rate limits and write lock.
func (c *Client) Repository(owner, repo string) *GitHub {
	return &GitHub{
		owner: owner, repo: repo, client: c,
		pulls: c.gh.PullRequests, issues: c.gh.Issues, repos: c.gh.Repositories, checks: c.gh.Checks,
	}
}

// redact removes the tokens from an error; it is the last step before an
// error leaves the package.
func (c *Client) redact(err error) error { return c.secrets.redact(err) }

// authTransport sends the token, and only to the API's own host. With a
// token source, the token is asked for on every request (a cached one costs
// a lock) and remembered in sent, so errors can be cleaned of it.
type authTransport struct {
	base  http.RoundTripper
	host  string
	token func(context.Context) (string, error)
	sent  *secrets
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, t.host) {
		return t.base.RoundTrip(req)
	}
	token, err := t.token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, err
	}
	if t.sent != nil {
		t.sent.add(token)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return t.base.RoundTrip(req)
}

// sameHostRedirects refuses a redirect to another host: the API never needs
// one, and following it would be a way to make ferry call elsewhere.
func sameHostRedirects(host string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !strings.EqualFold(req.URL.Host, host) {
			return fmt.Errorf("github api: refusing a redirect to %s", req.URL.Host)
		}
		if len(via) >= 5 {
			return errors.New("github api: too many redirects")
		}
		return nil
	}
}

// GitHub is the API of one repository: commit statuses, required checks,
// pull requests and their comments. The go-github services it calls sit behind
// the small interfaces below, cut to the calls it makes.
type GitHub struct {
	owner, repo string
	client      *Client
	pulls       pullRequestsAPI
	issues      issuesAPI
	repos       repositoriesAPI
	checks      checksAPI
}

type pullRequestsAPI interface {
	List(ctx context.Context, owner, repo string, opts *github.PullRequestListOptions) ([]*github.PullRequest, *github.Response, error)
	Create(ctx context.Context, owner, repo string, pull *github.NewPullRequest) (*github.PullRequest, *github.Response, error)
	Edit(ctx context.Context, owner, repo string, number int, pull *github.PullRequest) (*github.PullRequest, *github.Response, error)
}

type issuesAPI interface {
	AddLabelsToIssue(ctx context.Context, owner, repo string, number int, labels []string) ([]*github.Label, *github.Response, error)
	ListComments(ctx context.Context, owner, repo string, number int, opts *github.IssueListCommentsOptions) ([]*github.IssueComment, *github.Response, error)
	CreateComment(ctx context.Context, owner, repo string, number int, comment *github.IssueComment) (*github.IssueComment, *github.Response, error)
	EditComment(ctx context.Context, owner, repo string, commentID int64, comment *github.IssueComment) (*github.IssueComment, *github.Response, error)
}

type repositoriesAPI interface {
	CreateStatus(ctx context.Context, owner, repo, ref string, status *github.RepoStatus) (*github.RepoStatus, *github.Response, error)
	GetCombinedStatus(ctx context.Context, owner, repo, ref string, opts *github.ListOptions) (*github.CombinedStatus, *github.Response, error)
}

type checksAPI interface {
	ListCheckRunsForRef(ctx context.Context, owner, repo, ref string, opts *github.ListCheckRunsOptions) (*github.ListCheckRunsResults, *github.Response, error)
}

// String is owner/repo, which leads every error about the repository.
func (g *GitHub) String() string { return g.owner + "/" + g.repo }

// maxPages bounds every paginated read: 100 pages of 100 is far more than a
// repository's open promotion PRs, a commit's checks or a PR's comments.
const maxPages = 100
