package githubtest

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Documentation URLs of the pull request routes, sent with their errors.
const (
	docsCreatePull = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
	docsUpdatePull = "https://docs.github.com/rest/pulls/pulls#update-a-pull-request"
	docsListPulls  = "https://docs.github.com/rest/pulls/pulls#list-pull-requests"
)

// listPulls serves GET /repos/{owner}/{repo}/pulls: state (open, closed,
// all; default open), head ("owner:branch"; a value without the owner is
// ignored, as GitHub ignores it), base, sort (created, updated), direction,
// newest first by default, paginated.
func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := cmp.Or(q.Get("state"), "open")
	if state != "open" && state != "closed" && state != "all" {
		validationFailed(w, docsListPulls, fieldError{Resource: "PullRequest", Field: "state", Code: "invalid"})
		return
	}
	headOwner, head, byHead := strings.Cut(q.Get("head"), ":")
	base := q.Get("base")
	// Only created and updated are modelled; popularity and long-running
	// order as created does. GitHub's direction defaults to desc for created.
	sortBy := cmp.Or(q.Get("sort"), "created")
	byUpdated, asc := sortBy == "updated", sortBy != "created"
	switch q.Get("direction") {
	case "asc":
		asc = true
	case "desc":
		asc = false
	}

	s.refreshSHAs()
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []*pull
	for _, p := range s.pulls {
		switch {
		case state != "all" && p.State != state:
		case byHead && (!strings.EqualFold(headOwner, s.opts.Owner) || p.Head != head):
		case base != "" && p.Base != base:
		default:
			found = append(found, p)
		}
	}
	slices.SortFunc(found, func(a, b *pull) int {
		c := cmp.Compare(a.Number, b.Number) // numbers follow creation
		if byUpdated {
			c = cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), c)
		}
		if !asc {
			c = -c
		}
		return c
	})
	out := []pullJSON{}
	for _, p := range paginate(w, r, found) {
		out = append(out, s.renderPull(r, p))
	}
	writeJSON(w, http.StatusOK, out)
}

// createPull serves POST /repos/{owner}/{repo}/pulls. head is "branch" or
// "owner:branch". It answers 201, or 422 as GitHub does: a missing field, a
// head in another owner or that Options.BranchExists denies, head equal to
// base, a body over 65536 characters, or an open pull request for the same
// head and base ("A pull request already exists for owner:branch.").
func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title               *string `json:"title"`
		Head                *string `json:"head"`
		Base                *string `json:"base"`
		Body                string  `json:"body"`
		Draft               bool    `json:"draft"`
		MaintainerCanModify bool    `json:"maintainer_can_modify"`
	}
	if !decode(w, r, docsCreatePull, &in) {
		return
	}
	var missing []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"head", in.Head}, {"base", in.Base}, {"title", in.Title}} {
		if f.v == nil {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		notSupplied(w, docsCreatePull, missing...)
		return
	}
	owner, head, qualified := strings.Cut(*in.Head, ":")
	if !qualified {
		owner, head = s.opts.Owner, *in.Head
	}
	base := *in.Base
	switch {
	case strings.TrimSpace(*in.Title) == "":
		validationFailed(w, docsCreatePull, fieldError{Resource: "Issue", Field: "title", Code: "missing_field"})
		return
	case !strings.EqualFold(owner, s.opts.Owner) || head == "":
		validationFailed(w, docsCreatePull, fieldError{Resource: "PullRequest", Field: "head", Code: "invalid"})
		return
	case head == base:
		validationFailed(w, docsCreatePull, fieldError{Resource: "PullRequest", Code: "custom",
			Message: fmt.Sprintf("No commits between %s and %s", base, head)})
		return
	case utf8.RuneCountInString(in.Body) > maxBody:
		validationFailed(w, docsCreatePull, bodyTooLong("Issue", "body"))
		return
	}
	if s.opts.BranchExists != nil && !s.opts.BranchExists(head) {
		validationFailed(w, docsCreatePull, fieldError{Resource: "PullRequest", Field: "head", Code: "invalid"})
		return
	}
	headSHA, baseSHA := s.branchSHA(head), s.branchSHA(base)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openPull(head, base, 0) != nil {
		validationFailed(w, docsCreatePull, s.alreadyExists(head))
		return
	}
	p := s.addPull(&pull{
		PullRequest: PullRequest{
			Head: head, Base: base, Title: *in.Title, Body: in.Body,
			Draft: in.Draft, Author: s.opts.Login,
		},
		headSHA:             headSHA,
		baseSHA:             baseSHA,
		maintainerCanModify: in.MaintainerCanModify,
	})
	out := s.renderPullFull(r, p)
	w.Header().Set("Location", out.URL)
	writeJSON(w, http.StatusCreated, out)
}

// alreadyExists is GitHub's error for a second open pull request from head.
func (s *Server) alreadyExists(head string) fieldError {
	return fieldError{Resource: "PullRequest", Code: "custom",
		Message: fmt.Sprintf("A pull request already exists for %s:%s.", s.opts.Owner, head)}
}

// bodyTooLong is GitHub's error for a body over maxBody characters.
func bodyTooLong(resource, field string) fieldError {
	return fieldError{Resource: resource, Field: field, Code: "custom",
		Message: fmt.Sprintf("%s is too long (maximum is %d characters)", field, maxBody)}
}

// getPull serves GET /repos/{owner}/{repo}/pulls/{number}.
func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	s.refreshSHAs()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullAt(r)
	if p == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.renderPullFull(r, p))
}

// editPull serves PATCH /repos/{owner}/{repo}/pulls/{number}: title, body,
// state (open, closed), base, maintainer_can_modify. It answers 422 as GitHub
// does for an unknown state, an empty title, a body over 65536 characters, a
// new base on a closed pull request, reopening a merged one, or reopening
// (or rebasing) one onto a head and base another open one already has.
func (s *Server) editPull(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title               *string `json:"title"`
		Body                *string `json:"body"`
		State               *string `json:"state"`
		Base                *string `json:"base"`
		MaintainerCanModify *bool   `json:"maintainer_can_modify"`
	}
	if !decode(w, r, docsUpdatePull, &in) {
		return
	}
	switch {
	case in.State != nil && *in.State != "open" && *in.State != "closed":
		validationFailed(w, docsUpdatePull, fieldError{Resource: "PullRequest", Field: "state", Code: "invalid"})
		return
	case in.Title != nil && strings.TrimSpace(*in.Title) == "":
		validationFailed(w, docsUpdatePull, fieldError{Resource: "Issue", Field: "title", Code: "missing_field"})
		return
	case in.Body != nil && utf8.RuneCountInString(*in.Body) > maxBody:
		validationFailed(w, docsUpdatePull, bodyTooLong("Issue", "body"))
		return
	}

	s.refreshSHAs()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullAt(r)
	if p == nil {
		notFound(w)
		return
	}
	state, base := p.State, p.Base
	if in.State != nil {
		state = *in.State
	}
	if in.Base != nil {
		base = *in.Base
	}
	switch {
	case base != p.Base && state == "closed":
		validationFailed(w, docsUpdatePull, fieldError{Resource: "PullRequest", Field: "base", Code: "invalid",
			Message: "Cannot change base branch of closed pull request"})
		return
	case p.Merged && state == "open":
		validationFailed(w, docsUpdatePull, fieldError{Resource: "PullRequest", Field: "state", Code: "invalid",
			Message: "Cannot reopen a merged pull request"})
		return
	case state == "open" && s.openPull(p.Head, base, p.Number) != nil:
		validationFailed(w, docsUpdatePull, s.alreadyExists(p.Head))
		return
	}

	t := now()
	if in.Title != nil {
		p.Title = *in.Title
	}
	if in.Body != nil {
		p.Body = *in.Body
	}
	if in.MaintainerCanModify != nil {
		p.maintainerCanModify = *in.MaintainerCanModify
	}
	if state != p.State {
		p.ClosedAt = time.Time{}
		if state == "closed" {
			p.ClosedAt = t
		}
	}
	p.State, p.Base, p.UpdatedAt = state, base, t
	writeJSON(w, http.StatusOK, s.renderPullFull(r, p))
}

// pullAt returns the pull request the request's {number} names, or nil. The
// caller holds s.mu.
func (s *Server) pullAt(r *http.Request) *pull {
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil {
		return nil
	}
	return s.pull(n)
}
