package githubtest

import (
	"cmp"
	"net/http"
	"strconv"
	"time"
)

// pullJSON is GitHub's "pull request simple", the shape the list route
// returns. It has no "merged": a listed pull request is merged when its
// merged_at is set, on GitHub as here.
type pullJSON struct {
	URL                string      `json:"url"`
	ID                 int64       `json:"id"`
	NodeID             string      `json:"node_id"`
	HTMLURL            string      `json:"html_url"`
	DiffURL            string      `json:"diff_url"`
	PatchURL           string      `json:"patch_url"`
	IssueURL           string      `json:"issue_url"`
	CommitsURL         string      `json:"commits_url"`
	ReviewCommentsURL  string      `json:"review_comments_url"`
	ReviewCommentURL   string      `json:"review_comment_url"`
	CommentsURL        string      `json:"comments_url"`
	StatusesURL        string      `json:"statuses_url"`
	Number             int         `json:"number"`
	State              string      `json:"state"`
	Locked             bool        `json:"locked"`
	Title              string      `json:"title"`
	User               userJSON    `json:"user"`
	Body               *string     `json:"body"`
	Labels             []labelJSON `json:"labels"`
	CreatedAt          time.Time   `json:"created_at"`
	UpdatedAt          time.Time   `json:"updated_at"`
	ClosedAt           *time.Time  `json:"closed_at"`
	MergedAt           *time.Time  `json:"merged_at"`
	MergeCommitSHA     *string     `json:"merge_commit_sha"`
	Assignee           *userJSON   `json:"assignee"`
	Assignees          []userJSON  `json:"assignees"`
	RequestedReviewers []userJSON  `json:"requested_reviewers"`
	Head               branchJSON  `json:"head"`
	Base               branchJSON  `json:"base"`
	AuthorAssociation  string      `json:"author_association"`
	AutoMerge          *struct{}   `json:"auto_merge"`
	Draft              bool        `json:"draft"`
}

// pullFullJSON is GitHub's full pull request, which create, get and update
// return.
type pullFullJSON struct {
	pullJSON
	Merged              bool      `json:"merged"`
	Mergeable           *bool     `json:"mergeable"`
	MergeableState      string    `json:"mergeable_state"`
	MergedBy            *userJSON `json:"merged_by"`
	Comments            int       `json:"comments"`
	ReviewComments      int       `json:"review_comments"`
	MaintainerCanModify bool      `json:"maintainer_can_modify"`
}

// branchJSON is a pull request's head or base. sha is left out when
// Options.BranchSHA does not give one.
type branchJSON struct {
	Label string   `json:"label"`
	Ref   string   `json:"ref"`
	SHA   string   `json:"sha,omitempty"`
	User  userJSON `json:"user"`
	Repo  repoJSON `json:"repo"`
}

// renderPull renders p as the list route does. The caller holds s.mu.
func (s *Server) renderPull(r *http.Request, p *pull) pullJSON {
	api := s.repoAPI(r)
	n := strconv.Itoa(p.Number)
	branch := func(ref, sha string) branchJSON {
		return branchJSON{
			Label: s.opts.Owner + ":" + ref, Ref: ref, SHA: sha,
			User: user(r, s.opts.Owner), Repo: s.repo(r),
		}
	}
	out := pullJSON{
		URL:                api + "/pulls/" + n,
		ID:                 p.id,
		NodeID:             nodeID("PR", p.id),
		HTMLURL:            s.repoWeb(r) + "/pull/" + n,
		DiffURL:            s.repoWeb(r) + "/pull/" + n + ".diff",
		PatchURL:           s.repoWeb(r) + "/pull/" + n + ".patch",
		IssueURL:           api + "/issues/" + n,
		CommitsURL:         api + "/pulls/" + n + "/commits",
		ReviewCommentsURL:  api + "/pulls/" + n + "/comments",
		ReviewCommentURL:   api + "/pulls/comments{/number}",
		CommentsURL:        api + "/issues/" + n + "/comments",
		StatusesURL:        api + "/statuses/" + cmp.Or(p.headSHA, p.Head),
		Number:             p.Number,
		State:              p.State,
		Title:              p.Title,
		User:               user(r, p.Author),
		Labels:             s.renderLabels(r, p.Labels),
		CreatedAt:          p.CreatedAt,
		UpdatedAt:          p.UpdatedAt,
		Assignees:          []userJSON{},
		RequestedReviewers: []userJSON{},
		Head:               branch(p.Head, p.headSHA),
		Base:               branch(p.Base, p.baseSHA),
		AuthorAssociation:  "MEMBER",
		Draft:              p.Draft,
	}
	// Copies, so the rendering does not alias the server's state.
	if body := p.Body; body != "" {
		out.Body = &body
	}
	if t := p.ClosedAt; !t.IsZero() {
		out.ClosedAt = &t
	}
	if t := p.MergedAt; !t.IsZero() {
		out.MergedAt = &t
	}
	return out
}

// renderPullFull renders p as create, get and update do. The caller holds s.mu.
func (s *Server) renderPullFull(r *http.Request, p *pull) pullFullJSON {
	out := pullFullJSON{
		pullJSON:            s.renderPull(r, p),
		Merged:              p.Merged,
		MergeableState:      "unknown",
		Comments:            len(s.commentsOn(p.Number)),
		MaintainerCanModify: p.maintainerCanModify,
	}
	if p.mergedBy != "" {
		u := user(r, p.mergedBy)
		out.MergedBy = &u
	}
	return out
}
