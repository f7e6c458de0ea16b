package source

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// scpLike matches scp-style SSH addresses such as git@github.com:acme/models.git.
var scpLike = regexp.MustCompile(`^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:[^/\\]`)

// ValidateURL checks a repository URL as ferry.yaml gives it. By default only
// https://, ssh:// and scp-style addresses are allowed; allowLocal also permits
// local paths, file:// and plain http:// (demos and tests on loopback). A URL
// carrying a password or token is refused: credentials belong in the auth
// settings, where they are never logged.
func ValidateURL(raw string, allowLocal bool) error {
	const where = "put the token in auth.tokenEnv or the key in auth.sshKeyFile instead"
	if raw == "" {
		return fmt.Errorf("url is empty: give the repository's https:// or ssh:// clone URL")
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		if _, hasPassword := u.User.Password(); hasPassword {
			return fmt.Errorf("url %s embeds a password or token: %s", redactURL(u), where)
		}
		switch u.Scheme {
		case "https", "ssh":
			if u.Scheme == "https" && u.User != nil {
				return fmt.Errorf("url %s embeds a user name: %s", redactURL(u), where)
			}
			return nil
		case "http", "file":
			if allowLocal {
				return nil
			}
			return fmt.Errorf("url %s: %s:// is allowed only with allowLocal: true (for demos and tests)", redactURL(u), u.Scheme)
		default:
			return fmt.Errorf("url %s: scheme %q is not supported: use https:// or ssh://", redactURL(u), u.Scheme)
		}
	}
	if scpLike.MatchString(raw) && !strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, ".") {
		return nil
	}
	if allowLocal {
		return nil
	}
	return fmt.Errorf("url %q is a local path: allowed only with allowLocal: true (for demos and tests)", raw)
}

// redactURL prints u without any user information.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
