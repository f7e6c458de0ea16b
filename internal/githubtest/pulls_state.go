package githubtest

import (
	"slices"
	"time"
)

// maxBody is GitHub's limit on the body of a pull request, issue or comment,
// in characters.
const maxBody = 65536

// personLogin is who OpenPR, Merge and AddComment act as: a person, not the
// API's user.
const personLogin = "octocat"

// PullRequest is a pull request as the server holds it.
type PullRequest struct {
	Number int
	Title  string
	Body   string
	// Head and Base are branch names, without an "owner:" prefix.
	Head, Base string
	// State is "open" or "closed"; a merged pull request is closed and Merged.
	State  string
	Draft  bool
	Merged bool
	// Labels are label names in the order they were added.
	Labels []string
	// Author is the login that opened it: Options.Login through the API,
	// "octocat" through OpenPR.
	Author               string
	CreatedAt, UpdatedAt time.Time
	// ClosedAt and MergedAt are zero until the pull request is closed or merged.
	ClosedAt, MergedAt time.Time
}

// pull is a pull request with what only the wire shows.
type pull struct {
	PullRequest
	id                  int64
	headSHA, baseSHA    string
	maintainerCanModify bool
	mergedBy            string
}

func (p *pull) copy() PullRequest {
	c := p.PullRequest
	c.Labels = slices.Clone(c.Labels)
	return c
}

// PullRequests returns every pull request, by number.
func (s *Server) PullRequests() []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PullRequest, len(s.pulls))
	for i, p := range s.pulls {
		out[i] = p.copy()
	}
	return out
}

// PullRequest returns pull request n, and whether it exists.
func (s *Server) PullRequest(n int) (PullRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pull(n)
	if p == nil {
		return PullRequest{}, false
	}
	return p.copy(), true
}

// OpenPR opens a pull request as a person would, and returns its number.
// Like GitHub, it refuses (t.Errorf, returning 0) a second open pull request
// for the same head and base.
func (s *Server) OpenPR(head, base, title, body string) int {
	headSHA, baseSHA := s.branchSHA(head), s.branchSHA(base)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openPull(head, base, 0) != nil {
		s.t.Errorf("githubtest: OpenPR: a pull request already exists for %s:%s", s.opts.Owner, head)
		return 0
	}
	return s.addPull(&pull{
		PullRequest: PullRequest{Head: head, Base: base, Title: title, Body: body, Author: personLogin},
		headSHA:     headSHA,
		baseSHA:     baseSHA,
	}).Number
}

// Merge marks pull request n merged and closed, as if a person had pressed
// the button; the test merges the branches in Git itself. Merging a pull
// request that does not exist or is not open fails the test with t.Errorf.
func (s *Server) Merge(n int) {
	s.refreshSHAs()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pull(n)
	if p == nil || p.State != "open" {
		s.t.Errorf("githubtest: Merge: no open pull request #%d", n)
		return
	}
	t := now()
	p.State, p.Merged, p.mergedBy = "closed", true, personLogin
	p.ClosedAt, p.MergedAt, p.UpdatedAt = t, t, t
}

// Close closes pull request n unmerged, as a person would. Closing one that
// does not exist or is not open fails the test with t.Errorf.
func (s *Server) Close(n int) {
	s.refreshSHAs()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pull(n)
	if p == nil || p.State != "open" {
		s.t.Errorf("githubtest: Close: no open pull request #%d", n)
		return
	}
	t := now()
	p.State, p.ClosedAt, p.UpdatedAt = "closed", t, t
}

// pull returns pull request n, or nil. The caller holds s.mu.
func (s *Server) pull(n int) *pull {
	if n < 1 || n > len(s.pulls) {
		return nil
	}
	return s.pulls[n-1]
}

// openPull returns the open pull request from head into base other than
// number except, or nil. The caller holds s.mu.
func (s *Server) openPull(head, base string, except int) *pull {
	for _, p := range s.pulls {
		if p.State == "open" && p.Head == head && p.Base == base && p.Number != except {
			return p
		}
	}
	return nil
}

// addPull opens p, giving it its number, id, state and times. The caller
// holds s.mu.
func (s *Server) addPull(p *pull) *pull {
	t := now()
	p.Number, p.id, p.State = len(s.pulls)+1, s.newID(), "open"
	p.CreatedAt, p.UpdatedAt = t, t
	s.pulls = append(s.pulls, p)
	return p
}

// branchSHA asks Options.BranchSHA, if set. Call it without holding s.mu:
// the callback may be slow or call back into the Server.
func (s *Server) branchSHA(branch string) string {
	if s.opts.BranchSHA == nil {
		return ""
	}
	return s.opts.BranchSHA(branch)
}

// refreshSHAs records the commits the branches of open pull requests point
// at now, so that an open pull request shows its branches' current commits
// and a closed one the last the server saw.
func (s *Server) refreshSHAs() {
	if s.opts.BranchSHA == nil {
		return
	}
	s.mu.Lock()
	shas := map[string]string{}
	for _, p := range s.pulls {
		if p.State == "open" {
			shas[p.Head], shas[p.Base] = "", ""
		}
	}
	s.mu.Unlock()
	for b := range shas {
		shas[b] = s.branchSHA(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls {
		if p.State != "open" {
			continue
		}
		if sha := shas[p.Head]; sha != "" {
			p.headSHA = sha
		}
		if sha := shas[p.Base]; sha != "" {
			p.baseSHA = sha
		}
	}
}
