package promote

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// CommentAction says what UpsertComment did.
type CommentAction string

const (
	CommentCreated   CommentAction = "created"
	CommentUpdated   CommentAction = "updated"
	CommentUnchanged CommentAction = "unchanged"
)

// CommentResult is the comment a pull request carries after UpsertComment.
type CommentResult struct {
	ID     int64         `json:"id"`
	URL    string        `json:"url"`
	Action CommentAction `json:"action"`
}

// UpsertComment makes pull request number carry body in one comment, found
// again by marker: a hidden line (an HTML comment, such as PreviewMarker)
// that body starts with. It lists the pull request's comments, 100 a page and
// at most 100 pages, and edits the oldest whose body starts with marker when
// its body differs (a comment that merely quotes the marker does not start
// with it); only when there is none does it create one. So each new push
// edits the comment, never repeats it: after a create that GitHub did but
// answered with an error, the next call finds and edits it.
//
// body must start with marker and be at most MaxCommentBytes; otherwise the
// error comes before any request. Errors lead with owner/repo and the pull
// request.
func (g *GitHub) UpsertComment(ctx context.Context, number int, marker, body string) (CommentResult, error) {
	if !strings.HasPrefix(marker, "<!--") || !strings.HasSuffix(marker, "-->") || !strings.HasPrefix(body, marker) {
		return CommentResult{}, fmt.Errorf("%s: pull request #%d: comment: the body must start with a hidden marker such as %s", g, number, PreviewMarker)
	}
	if len(body) > MaxCommentBytes {
		return CommentResult{}, fmt.Errorf("%s: pull request #%d: comment: %d bytes is over GitHub's %d-character limit", g, number, len(body), MaxCommentBytes)
	}
	g.client.writes.Lock()
	defer g.client.writes.Unlock()
	res, err := g.upsertComment(ctx, number, marker, body)
	if err != nil {
		return res, fmt.Errorf("%s: pull request #%d: comment: %w", g, number, g.client.redact(err))
	}
	return res, nil
}

func (g *GitHub) upsertComment(ctx context.Context, number int, marker, body string) (CommentResult, error) {
	found, err := g.findComment(ctx, number, marker)
	if err != nil {
		return CommentResult{}, err
	}
	if found == nil {
		created, _, err := g.issues.CreateComment(ctx, g.owner, g.repo, number, &github.IssueComment{Body: github.String(body)})
		if err != nil {
			return CommentResult{}, fmt.Errorf("create: %w", err)
		}
		return CommentResult{ID: created.GetID(), URL: created.GetHTMLURL(), Action: CommentCreated}, nil
	}
	res := CommentResult{ID: found.GetID(), URL: found.GetHTMLURL(), Action: CommentUnchanged}
	if found.GetBody() == body {
		return res, nil
	}
	if _, _, err := g.issues.EditComment(ctx, g.owner, g.repo, found.GetID(), &github.IssueComment{Body: github.String(body)}); err != nil {
		return res, fmt.Errorf("edit %d: %w", found.GetID(), err)
	}
	res.Action = CommentUpdated
	return res, nil
}

// findComment returns the oldest comment on the pull request whose body
// starts with marker, or nil.
func (g *GitHub) findComment(ctx context.Context, number int, marker string) (*github.IssueComment, error) {
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for page := 0; page < maxPages; page++ {
		comments, resp, err := g.issues.ListComments(ctx, g.owner, g.repo, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		for _, c := range comments {
			if strings.HasPrefix(c.GetBody(), marker) {
				return c, nil // listed oldest first
			}
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return nil, nil
}
