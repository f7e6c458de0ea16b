package apply

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
)

// Every error Apply and Diff return falls in one of three classes, named
// after what retries it:
//
//   - transient (IsTransient): retrying the same input later, with backoff,
//     may succeed with nobody changing anything. API server timeouts
//     (Timeout, ServerTimeout), throttling (429), conflicts (409), any 5xx,
//     network errors (refused, reset, DNS, TLS handshake, unexpected EOF), a
//     context deadline or cancellation, discovery errors (the API server's
//     list of kinds could not be read, or a kind ferry has objects of
//     vanished from it without ferry removing its CRD), a CRD not Established
//     in time, and failures to read or write the inventory or its key.
//   - mass delete (IsMassDelete): the guard refused a prune; a person
//     confirms it (see MassDeleteError), then the same input succeeds.
//   - bad input: everything else. The input must change: an object the API
//     server refuses (Invalid, Forbidden, BadRequest, a namespace that does
//     not exist), an immutable field without ferry.dev/force, a kind the
//     cluster does not serve, an object declared twice, an invalid inventory
//     name, a corrupt inventory ConfigMap or key Secret, an object the
//     policy refuses (Op "policy"), an object the impersonated account may
//     not write (Forbidden).
//
// Apply joins the failures of every object: the joined error is transient
// when any part of it is (one bad object plus a transient inventory write is
// retried as a whole, and the retry reports the bad object again).

// IsTransient reports whether err, or any error joined or wrapped in it, is
// transient (see above). For errors apply produced, the class was decided
// where the failure happened (the cause of an ObjectError is not kept, only
// its class); errors from elsewhere are classified by their cause: a context
// error, a net.Error, or the first Kubernetes API status in the tree.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*transientError](err); ok {
		return true
	}
	return transient(err)
}

// IsMassDelete reports whether the mass-delete guard refused a prune in err:
// nothing was pruned, and the same input succeeds once a person confirms
// (errors.As with *MassDeleteError gives the counts and how to confirm). An
// error can be transient and a mass delete at once; retrying it meets the
// guard again.
func IsMassDelete(err error) bool {
	_, ok := errors.AsType[*MassDeleteError](err)
	return ok
}

// transientError marks a failure worth retrying. Apply wraps each transient
// failure it produces in one, so that errors.As finds it anywhere in a
// joined tree; its message is its cause's.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// errTransient is what a transient ObjectError unwraps to: its class
// without its cause.
var errTransient error = &transientError{err: errors.New("transient")}

// mark returns err wrapped as transient when its cause is (see transient),
// else err itself.
func mark(err error) error {
	if err == nil || !transient(err) {
		return err
	}
	return &transientError{err: err}
}

// transient classifies a cause: a context deadline or cancellation, a
// network error, a discovery failure, or an API status worth retrying.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if _, ok := errors.AsType[*discovery.ErrGroupDiscoveryFailed](err); ok {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if code := status.Status().Code; code >= 500 && code <= 599 {
			return true
		}
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsConflict(err)
	}
	return false
}

// ObjectError is one object that could not be applied (or diffed). Its
// message is scrubbed of Secret values, since API errors can echo what was
// sent; the cause is not kept, so nothing can print it unscrubbed, only its
// class: errors.As finds a transient ObjectError as transient.
type ObjectError struct {
	Ref Ref
	// Op is what failed: "apply" when empty, "diff", or "policy" (refused
	// before any request that writes; see Policy).
	Op  string
	Msg string
	// Transient is true for failures worth retrying with backoff (see
	// IsTransient); false for bad input.
	Transient bool
}

func (e *ObjectError) Error() string {
	op := e.Op
	if op == "" {
		op = "apply"
	}
	return e.Ref.String() + ": " + op + ": " + e.Msg
}

// Unwrap gives the error's class to errors.As: a transient marker, or nothing.
func (e *ObjectError) Unwrap() error {
	if e.Transient {
		return errTransient
	}
	return nil
}
