package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Documentation URLs of the comment routes, sent with their errors.
const (
	docsCreateComment = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
	docsUpdateComment = "https://docs.github.com/rest/issues/comments#update-an-issue-comment"
)

// Comment is an issue (pull request) comment as the server holds it.
type Comment struct {
	ID int64
	// Issue is the number of the pull request it is on.
	Issue int
	Body  string
	// Author is Options.Login for comments made through the API, the
	// person's login for AddComment.
	Author               string
	CreatedAt, UpdatedAt time.Time
}

// commentJSON is GitHub's issue comment.
type commentJSON struct {
	ID                int64     `json:"id"`
	NodeID            string    `json:"node_id"`
	URL               string    `json:"url"`
	HTMLURL           string    `json:"html_url"`
	IssueURL          string    `json:"issue_url"`
	Body              string    `json:"body"`
	User              userJSON  `json:"user"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	AuthorAssociation string    `json:"author_association"`
}

// Comments returns the comments on pull request issue that have not been
// deleted, oldest first.
func (s *Server) Comments(issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.commentsOn(issue) {
		out = append(out, *c)
	}
	return out
}

// AddComment comments on pull request issue as a person ("octocat") would,
// and returns the comment's id. Commenting on a pull request that does not
// exist fails the test with t.Errorf.
func (s *Server) AddComment(issue int, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pull(issue) == nil {
		s.t.Errorf("githubtest: AddComment: no pull request #%d", issue)
		return 0
	}
	return s.addComment(issue, body, personLogin).ID
}

// addComment stores a new comment. The caller holds s.mu.
func (s *Server) addComment(issue int, body, author string) *Comment {
	t := now()
	c := &Comment{ID: s.newID(), Issue: issue, Body: body, Author: author, CreatedAt: t, UpdatedAt: t}
	s.comments = append(s.comments, c)
	return c
}

// commentsOn returns the comments on issue, oldest first. The caller holds s.mu.
func (s *Server) commentsOn(issue int) []*Comment {
	var out []*Comment
	for _, c := range s.comments {
		if c.Issue == issue {
			out = append(out, c)
		}
	}
	return out
}

// commentAt returns the comment the request's {id} names, or nil. The caller
// holds s.mu.
func (s *Server) commentAt(r *http.Request) *Comment {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil
	}
	i := slices.IndexFunc(s.comments, func(c *Comment) bool { return c.ID == id })
	if i < 0 {
		return nil
	}
	return s.comments[i]
}

func (s *Server) renderComment(r *http.Request, c *Comment) commentJSON {
	api := s.repoAPI(r)
	return commentJSON{
		ID:                c.ID,
		NodeID:            nodeID("IC", c.ID),
		URL:               fmt.Sprintf("%s/issues/comments/%d", api, c.ID),
		HTMLURL:           fmt.Sprintf("%s/pull/%d#issuecomment-%d", s.repoWeb(r), c.Issue, c.ID),
		IssueURL:          fmt.Sprintf("%s/issues/%d", api, c.Issue),
		Body:              c.Body,
		User:              user(r, c.Author),
		CreatedAt:         c.CreatedAt,
		UpdatedAt:         c.UpdatedAt,
		AuthorAssociation: "MEMBER",
	}
}

// listComments serves GET /repos/{owner}/{repo}/issues/{number}/comments,
// oldest first, paginated.
func (s *Server) listComments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullAt(r)
	if p == nil {
		notFound(w)
		return
	}
	out := []commentJSON{}
	for _, c := range paginate(w, r, s.commentsOn(p.Number)) {
		out = append(out, s.renderComment(r, c))
	}
	writeJSON(w, http.StatusOK, out)
}

// createComment serves POST /repos/{owner}/{repo}/issues/{number}/comments
// {body}: 201, or 422 for a missing, empty or too long (over 65536
// characters) body.
func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	body, ok := commentBody(w, r, docsCreateComment)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullAt(r)
	if p == nil {
		notFound(w)
		return
	}
	out := s.renderComment(r, s.addComment(p.Number, body, s.opts.Login))
	w.Header().Set("Location", out.URL)
	writeJSON(w, http.StatusCreated, out)
}

// getComment serves GET /repos/{owner}/{repo}/issues/comments/{id}.
func (s *Server) getComment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.commentAt(r)
	if c == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.renderComment(r, c))
}

// editComment serves PATCH /repos/{owner}/{repo}/issues/comments/{id} {body}:
// 200, or 422 as createComment.
func (s *Server) editComment(w http.ResponseWriter, r *http.Request) {
	body, ok := commentBody(w, r, docsUpdateComment)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.commentAt(r)
	if c == nil {
		notFound(w)
		return
	}
	c.Body, c.UpdatedAt = body, now()
	writeJSON(w, http.StatusOK, s.renderComment(r, c))
}

// deleteComment serves DELETE /repos/{owner}/{repo}/issues/comments/{id}: 204.
func (s *Server) deleteComment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.commentAt(r)
	if c == nil {
		notFound(w)
		return
	}
	s.comments = slices.DeleteFunc(s.comments, func(o *Comment) bool { return o == c })
	w.WriteHeader(http.StatusNoContent)
}

// commentBody reads and checks the {body} of a comment create or edit.
func commentBody(w http.ResponseWriter, r *http.Request, docURL string) (string, bool) {
	var in struct {
		Body *string `json:"body"`
	}
	if !decode(w, r, docURL, &in) {
		return "", false
	}
	switch {
	case in.Body == nil:
		notSupplied(w, docURL, "body")
		return "", false
	case *in.Body == "":
		validationFailed(w, docURL, fieldError{Resource: "IssueComment", Field: "body", Code: "missing_field"})
		return "", false
	case utf8.RuneCountInString(*in.Body) > maxBody:
		validationFailed(w, docURL, fieldError{Resource: "IssueComment", Field: "data", Code: "unprocessable",
			Message: fmt.Sprintf("Body is too long (maximum is %d characters)", maxBody)})
		return "", false
	}
	return *in.Body, true
}
