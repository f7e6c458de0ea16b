package githubtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// docsREST is the documentation_url GitHub sends with errors that have no
// page of their own (401, 404).
const docsREST = "https://docs.github.com/rest"

// errorBody is GitHub's error shape, which go-github decodes into
// *github.ErrorResponse.
type errorBody struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
	Status           string       `json:"status"`
}

// fieldError is one entry of a 422's "errors".
type fieldError struct {
	Resource string `json:"resource"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

// writeJSON answers status with v as JSON, without HTML escaping, as GitHub
// writes it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the package's own types are encoded; this is a bug here.
		panic(fmt.Sprintf("githubtest: encode %T: %v", v, err))
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers status with GitHub's error body.
func writeError(w http.ResponseWriter, status int, message, docURL string, errs ...fieldError) {
	writeJSON(w, status, errorBody{
		Message:          message,
		Errors:           errs,
		DocumentationURL: docURL,
		Status:           strconv.Itoa(status),
	})
}

// notFound is GitHub's answer for a route, repository or object it does not
// have (or will not admit to having).
func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Not Found", docsREST)
}

// validationFailed is GitHub's 422 for a request whose fields are well formed
// but not acceptable.
func validationFailed(w http.ResponseWriter, docURL string, errs ...fieldError) {
	writeError(w, http.StatusUnprocessableEntity, "Validation Failed", docURL, errs...)
}

// notSupplied is GitHub's 422 for required parameters missing from the body:
// `Invalid request.\n\n"head", "base" weren't supplied.`
func notSupplied(w http.ResponseWriter, docURL string, fields ...string) {
	quoted := make([]string, len(fields))
	for i, f := range fields {
		quoted[i] = strconv.Quote(f)
	}
	verb := "wasn't"
	if len(fields) > 1 {
		verb = "weren't"
	}
	msg := fmt.Sprintf("Invalid request.\n\n%s %s supplied.", strings.Join(quoted, ", "), verb)
	writeError(w, http.StatusUnprocessableEntity, msg, docURL)
}

// decode reads the request's JSON body into v. It answers 400 "Problems
// parsing JSON" for malformed JSON and 422 for a value of the wrong JSON type,
// as GitHub does, and reports whether the handler may go on. An empty body
// decodes as no parameters; unknown fields are ignored, as on GitHub.
func decode(w http.ResponseWriter, r *http.Request, docURL string, v any) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docURL)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	err = json.Unmarshal(body, v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.As(err, &typeErr):
		msg := fmt.Sprintf("Invalid request.\n\nFor 'properties/%s', %s is not %s.",
			typeErr.Field, typeErr.Value, jsonType(typeErr.Type))
		if typeErr.Field == "" {
			msg = fmt.Sprintf("Invalid request.\n\n%s is not %s.", typeErr.Value, jsonType(typeErr.Type))
		}
		writeError(w, http.StatusUnprocessableEntity, msg, docURL)
	default:
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docURL)
	}
	return false
}

// jsonType names the JSON type a Go type decodes from, with its article.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// userJSON is GitHub's "simple user".
type userJSON struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

// user renders login; its id is derived from the login, so it is stable.
func user(r *http.Request, login string) userJSON {
	kind := "User"
	if strings.HasSuffix(login, "[bot]") {
		kind = "Bot"
	}
	id := userID(login)
	return userJSON{
		Login:   login,
		ID:      id,
		NodeID:  nodeID("U", id),
		URL:     apiBase(r) + "users/" + login,
		HTMLURL: webBase(r) + login,
		Type:    kind,
	}
}

// userID is the id of the user login, derived from the login so it is stable.
func userID(login string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(login)))
	return int64(h.Sum32())
}

// repoJSON is the repository as pull requests embed it in head and base.
type repoJSON struct {
	ID            int64    `json:"id"`
	NodeID        string   `json:"node_id"`
	Name          string   `json:"name"`
	FullName      string   `json:"full_name"`
	Owner         userJSON `json:"owner"`
	Private       bool     `json:"private"`
	HTMLURL       string   `json:"html_url"`
	URL           string   `json:"url"`
	DefaultBranch string   `json:"default_branch"`
}

// repoID is the hosted repository's id.
const repoID = 4242

func (s *Server) repo(r *http.Request) repoJSON {
	full := s.opts.Owner + "/" + s.opts.Repo
	return repoJSON{
		ID:            repoID,
		NodeID:        nodeID("R", repoID),
		Name:          s.opts.Repo,
		FullName:      full,
		Owner:         user(r, s.opts.Owner),
		Private:       true,
		HTMLURL:       webBase(r) + full,
		URL:           s.repoAPI(r),
		DefaultBranch: "main",
	}
}

// repoAPI is the hosted repository's API URL, without a trailing slash.
func (s *Server) repoAPI(r *http.Request) string {
	return apiBase(r) + "repos/" + s.opts.Owner + "/" + s.opts.Repo
}

// repoWeb is the hosted repository's page URL, without a trailing slash.
func (s *Server) repoWeb(r *http.Request) string {
	return webBase(r) + s.opts.Owner + "/" + s.opts.Repo
}

// nodeID makes a GraphQL node id of the given kind; only its uniqueness matters.
func nodeID(kind string, id int64) string {
	return kind + "_" + strconv.FormatInt(id, 36)
}
