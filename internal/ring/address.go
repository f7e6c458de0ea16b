package ring

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// checkAddress says what is wrong with a member's ring endpoint, or nil: it
// must be http or https, with a host and a port, no userinfo, a path of
// nothing or "/", and no query or fragment. A member only ever calls the
// ring's two paths on it; anything more is somebody steering the call.
func checkAddress(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	port, _ := strconv.Atoi(u.Port())
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("no host")
	case port < 1 || port > 65535:
		return errors.New("no port")
	case u.User != nil:
		return errors.New("userinfo is not allowed")
	case u.Path != "" && u.Path != "/", u.RawPath != "":
		return errors.New("a path is not allowed")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("a query is not allowed")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("a fragment is not allowed")
	}
	return nil
}
