package testenv

import (
	"crypto/subtle"
	"net/http"
)

// authorized decides a request to the Git server. Without Username and
// Authorize every request is admitted. Otherwise its basic-auth credentials
// must be the server's Username and Password, or be accepted by Authorize:
// a server checking changing credentials (a GitHub App's installation
// tokens, which expire) keeps a fixed pair for the test's own clones.
func (s *GitServer) authorized(r *http.Request) bool {
	if s.username == "" && s.authorize == nil {
		return true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if s.username != "" && subtle.ConstantTimeCompare([]byte(user), []byte(s.username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.password)) == 1 {
		return true
	}
	return s.authorize != nil && s.authorize(user, pass)
}

// InstallationTokenAuth is an Authorize for a Git server in front of GitHub:
// it admits the user x-access-token with a password valid says is a current
// installation token (githubtest's Server.ValidInstallationToken).
func InstallationTokenAuth(valid func(token string) bool) func(user, password string) bool {
	return func(user, password string) bool {
		return user == "x-access-token" && password != "" && valid(password)
	}
}
