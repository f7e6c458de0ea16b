package githubtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// docsLabels is sent with the label routes' errors.
const docsLabels = "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue"

// label is one of the repository's labels. GitHub makes a label the first
// time an issue is given it, with color ededed.
type label struct {
	id    int64
	name  string
	color string
}

// labelJSON is GitHub's label.
type labelJSON struct {
	ID          int64   `json:"id"`
	NodeID      string  `json:"node_id"`
	URL         string  `json:"url"`
	Name        string  `json:"name"`
	Color       string  `json:"color"`
	Default     bool    `json:"default"`
	Description *string `json:"description"`
}

// label returns the repository's label named name (matched
// case-insensitively, as GitHub matches), making it if it is new. The caller
// holds s.mu.
func (s *Server) label(name string) label {
	for _, l := range s.labels {
		if strings.EqualFold(l.name, name) {
			return l
		}
	}
	l := label{id: s.newID(), name: name, color: "ededed"}
	s.labels = append(s.labels, l)
	return l
}

// renderLabels renders the labels named. The caller holds s.mu.
func (s *Server) renderLabels(r *http.Request, names []string) []labelJSON {
	out := []labelJSON{}
	for _, name := range names {
		l := s.label(name)
		out = append(out, labelJSON{
			ID:     l.id,
			NodeID: nodeID("LA", l.id),
			URL:    s.repoAPI(r) + "/labels/" + url.PathEscape(l.name),
			Name:   l.name,
			Color:  l.color,
		})
	}
	return out
}

// listLabels serves GET /repos/{owner}/{repo}/issues/{number}/labels, paginated.
func (s *Server) listLabels(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullAt(r)
	if p == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, paginate(w, r, s.renderLabels(r, p.Labels)))
}

// setLabels serves POST (add, replace false) and PUT (replace) on
// /repos/{owner}/{repo}/issues/{number}/labels and answers with the issue's
// labels. The body is {"labels": [...]} or a bare array, whose items are
// names or {"name": ...} objects, as GitHub accepts.
func (s *Server) setLabels(w http.ResponseWriter, r *http.Request, replace bool) {
	names, ok := decodeLabels(w, r)
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
	if replace {
		p.Labels = nil
	}
	for _, name := range names {
		l := s.label(name)
		if !slices.Contains(p.Labels, l.name) {
			p.Labels = append(p.Labels, l.name)
		}
	}
	p.UpdatedAt = now()
	writeJSON(w, http.StatusOK, s.renderLabels(r, p.Labels))
}

// removeAllLabels serves DELETE /repos/{owner}/{repo}/issues/{number}/labels: 204.
func (s *Server) removeAllLabels(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullAt(r)
	if p == nil {
		notFound(w)
		return
	}
	p.Labels, p.UpdatedAt = nil, now()
	w.WriteHeader(http.StatusNoContent)
}

// removeLabel serves DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}
// and answers with the labels left, or 404 "Label does not exist".
func (s *Server) removeLabel(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullAt(r)
	if p == nil {
		notFound(w)
		return
	}
	i := slices.IndexFunc(p.Labels, func(l string) bool { return strings.EqualFold(l, name) })
	if i < 0 {
		writeError(w, http.StatusNotFound, "Label does not exist", "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue")
		return
	}
	p.Labels, p.UpdatedAt = slices.Delete(p.Labels, i, i+1), now()
	writeJSON(w, http.StatusOK, s.renderLabels(r, p.Labels))
}

// decodeLabels reads the label names of a set-labels body, answering 400 or
// 422 as decode does when it cannot.
func decodeLabels(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsLabels)
		return nil, false
	}
	var items []json.RawMessage
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !decode(w, r, docsLabels, &items) {
			return nil, false
		}
	} else {
		var in struct {
			Labels []json.RawMessage `json:"labels"`
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !decode(w, r, docsLabels, &in) {
			return nil, false
		}
		items = in.Labels
	}
	names := make([]string, 0, len(items))
	for _, item := range items {
		var name string
		if err := json.Unmarshal(item, &name); err != nil {
			var obj struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(item, &obj); err != nil {
				writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\nFor 'items', "+string(item)+" is not a string or an object.", docsLabels)
				return nil, false
			}
			name = obj.Name
		}
		if strings.TrimSpace(name) == "" {
			validationFailed(w, docsLabels, fieldError{Resource: "Label", Field: "name", Code: "missing_field"})
			return nil, false
		}
		names = append(names, name)
	}
	return names, true
}
