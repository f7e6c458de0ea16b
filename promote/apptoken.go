package promote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
)

// installation is the state an installation's handles share: its current
// token and the ghinstallation transport that mints the next.
//
// The cache sits in front of ghinstallation's own so that the refresh margin
// is the App's: ghinstallation refreshes when a token has less than a minute
// left, which, asked for a token after this cache decided it needs a new
// one, it always has (RefreshBefore is at most a minute). So every call to
// tr.Token here mints, and one minting serves every caller until the token
// is within RefreshBefore of its expiry.
type installation struct {
	app *App
	id  int64
	tr  *ghinstallation.Transport
	// sem holds one caller at a time: concurrent callers wait for the one
	// minting, or give up with their context.
	sem     chan struct{}
	current string
	expires time.Time
}

// token returns the current token, minting one when there is none or it is
// within RefreshBefore of its expiry.
func (in *installation) token(ctx context.Context) (string, error) {
	select {
	case in.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("github app %d: installation %d: wait for a token: %w", in.app.id, in.id, ctx.Err())
	}
	defer func() { <-in.sem }()
	if in.current != "" && time.Until(in.expires) > in.app.refreshBefore {
		return in.current, nil
	}
	token, err := in.tr.Token(ctx)
	if err != nil {
		return "", in.app.mintError(in.id, err)
	}
	expires, _, err := in.tr.Expiry()
	if token == "" || err != nil {
		return "", &tokenError{msg: fmt.Sprintf("github app %d: installation %d: mint a token: GitHub answered without a token or its expiry", in.app.id, in.id), transient: true}
	}
	in.app.secrets.add(token)
	in.current, in.expires = token, expires
	in.app.log.Debug("github app token minted", "installation", in.id, "expires", expires)
	return token, nil
}

// tokenError is a failure to get an installation token, or to find the
// installation. Its message is written here, from the status and GitHub's
// message, never from what ghinstallation or the transport said verbatim.
type tokenError struct {
	msg       string
	transient bool
	cause     error
}

func (e *tokenError) Error() string   { return e.msg }
func (e *tokenError) Unwrap() error   { return e.cause }
func (e *tokenError) Transient() bool { return e.transient }

// mintError turns a failed minting into a tokenError that says what to do.
func (a *App) mintError(id int64, err error) error {
	prefix := fmt.Sprintf("github app %d: installation %d: mint a token", a.id, id)
	he, ok := errors.AsType[*ghinstallation.HTTPError](err)
	if !ok || he.Response == nil || he.RootCause != nil {
		// No answer (network, deadline) or an answer that did not decode:
		// worth another try.
		cause := err
		if ok && he.RootCause != nil {
			cause = he.RootCause
		}
		msg := a.secrets.redact(fmt.Errorf("%s: %w", prefix, cause)).Error()
		return &tokenError{msg: msg, transient: true, cause: err}
	}
	// ghinstallation leaves the body of a non-2xx answer open.
	resp := he.Response
	msg := prefix + ": " + resp.Status + githubMessage(resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		msg += " (is the private key one of this App's, and the App ID right?)"
	case http.StatusNotFound:
		msg += " (is the App still installed there, and the installation ID right?)"
	}
	transient := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == http.StatusForbidden && rateLimited(resp))
	return &tokenError{msg: a.secrets.redact(errors.New(msg)).Error(), transient: transient, cause: err}
}
