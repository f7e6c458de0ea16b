package githubtest

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// docsCreateStatus is sent with the create-status route's errors.
const docsCreateStatus = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"

// maxDescription is GitHub's limit on a status description, in characters.
const maxDescription = 140

// ciLogin is who SetStatus and SetCheckRun act as: an external CI.
const ciLogin = "ci-bot"

// Status is one commit status as posted.
type Status struct {
	ID          int64
	Context     string
	State       string
	Description string
	TargetURL   string
	// Creator is Options.Login for statuses posted through the API, "ci-bot"
	// for SetStatus.
	Creator   string
	CreatedAt time.Time
}

// statusJSON is GitHub's commit status.
type statusJSON struct {
	URL         string    `json:"url"`
	AvatarURL   *string   `json:"avatar_url"`
	ID          int64     `json:"id"`
	NodeID      string    `json:"node_id"`
	State       string    `json:"state"`
	Description *string   `json:"description"`
	TargetURL   *string   `json:"target_url"`
	Context     string    `json:"context"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Creator     userJSON  `json:"creator"`
}

// combinedJSON is GitHub's combined status for a ref.
type combinedJSON struct {
	State         string       `json:"state"`
	Statuses      []statusJSON `json:"statuses"`
	SHA           string       `json:"sha"`
	TotalCount    int          `json:"total_count"`
	Repository    repoJSON     `json:"repository"`
	CommitURL     string       `json:"commit_url"`
	RepositoryURL string       `json:"repository_url"`
	URL           string       `json:"url"`
}

// validState reports whether state is one GitHub accepts for a status.
func validState(state string) bool {
	switch state {
	case "error", "failure", "pending", "success":
		return true
	}
	return false
}

// Statuses returns every status posted to sha, in the order posted.
func (s *Server) Statuses(sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses[sha])
}

// SetStatus posts a status to sha as an external CI would. A state GitHub
// refuses fails the test with t.Errorf and posts nothing.
func (s *Server) SetStatus(sha, context, state, description string) {
	if !validState(state) {
		s.t.Errorf("githubtest: SetStatus: state %q is not error, failure, pending or success", state)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addStatus(sha, Status{Context: context, State: state, Description: description, Creator: ciLogin})
}

// addStatus stores st for ref. The caller holds s.mu.
func (s *Server) addStatus(ref string, st Status) Status {
	st.ID, st.CreatedAt = s.newID(), now()
	s.statuses[ref] = append(s.statuses[ref], st)
	return st
}

func (s *Server) renderStatus(r *http.Request, ref string, st Status) statusJSON {
	out := statusJSON{
		URL:       fmt.Sprintf("%s/statuses/%s", s.repoAPI(r), ref),
		ID:        st.ID,
		NodeID:    nodeID("SC", st.ID),
		State:     st.State,
		Context:   st.Context,
		CreatedAt: st.CreatedAt,
		UpdatedAt: st.CreatedAt,
		Creator:   user(r, st.Creator),
	}
	if st.Description != "" {
		out.Description = &st.Description
	}
	if st.TargetURL != "" {
		out.TargetURL = &st.TargetURL
	}
	return out
}

// createStatus serves POST /repos/{owner}/{repo}/statuses/{sha} {state,
// target_url, description, context}: 201, or 422 for a missing or unknown
// state or a description over 140 characters. context defaults to "default".
func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	var in struct {
		State       *string `json:"state"`
		TargetURL   string  `json:"target_url"`
		Description string  `json:"description"`
		Context     string  `json:"context"`
	}
	if !decode(w, r, docsCreateStatus, &in) {
		return
	}
	switch {
	case in.State == nil:
		notSupplied(w, docsCreateStatus, "state")
		return
	case !validState(*in.State):
		validationFailed(w, docsCreateStatus, fieldError{Resource: "Status", Field: "state", Code: "custom",
			Message: "state is not included in the list"})
		return
	case utf8.RuneCountInString(in.Description) > maxDescription:
		validationFailed(w, docsCreateStatus, fieldError{Resource: "Status", Field: "description", Code: "custom",
			Message: fmt.Sprintf("description is too long (maximum is %d characters)", maxDescription)})
		return
	}
	ref := r.PathValue("sha")
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.addStatus(ref, Status{
		Context:     cmp.Or(in.Context, "default"),
		State:       *in.State,
		Description: in.Description,
		TargetURL:   in.TargetURL,
		Creator:     s.opts.Login,
	})
	out := s.renderStatus(r, ref, st)
	w.Header().Set("Location", out.URL)
	writeJSON(w, http.StatusCreated, out)
}

// listStatuses serves GET /repos/{owner}/{repo}/commits/{ref}/statuses:
// every status posted to ref, newest first, paginated.
func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := slices.Clone(s.statuses[ref])
	slices.Reverse(all)
	out := []statusJSON{}
	for _, st := range paginate(w, r, all) {
		out = append(out, s.renderStatus(r, ref, st))
	}
	writeJSON(w, http.StatusOK, out)
}

// combinedStatus serves GET /repos/{owner}/{repo}/commits/{ref}/status: the
// latest status of each context (in the order the contexts first appeared,
// paginated) and their combined state: failure if any is error or failure,
// else pending if any is pending or there are none, else success.
func (s *Server) combinedStatus(w http.ResponseWriter, r *http.Request, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var latest []Status
	for _, st := range s.statuses[ref] {
		i := slices.IndexFunc(latest, func(l Status) bool { return l.Context == st.Context })
		if i < 0 {
			latest = append(latest, st)
		} else {
			latest[i] = st
		}
	}
	out := combinedJSON{
		State:         combine(latest),
		Statuses:      []statusJSON{},
		SHA:           ref,
		TotalCount:    len(latest),
		Repository:    s.repo(r),
		CommitURL:     s.repoAPI(r) + "/commits/" + ref,
		RepositoryURL: s.repoAPI(r),
		URL:           s.repoAPI(r) + "/commits/" + ref + "/status",
	}
	for _, st := range paginate(w, r, latest) {
		out.Statuses = append(out.Statuses, s.renderStatus(r, ref, st))
	}
	writeJSON(w, http.StatusOK, out)
}

// combine is GitHub's combined state of the latest status per context.
func combine(latest []Status) string {
	state := "success"
	if len(latest) == 0 {
		state = "pending"
	}
	for _, st := range latest {
		switch st.State {
		case "error", "failure":
			return "failure"
		case "pending":
			state = "pending"
		}
	}
	return state
}
