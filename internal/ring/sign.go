package ring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Members authenticate each request with a signature, not the token itself:
// the address a request goes to comes from a Lease, and a Lease's address is
// only as trustworthy as whoever could write it. A signature binds the
// recipient's identity, the method, the path, the time and the body; a
// stolen one is good for MaxSkew, at that one member, at that one endpoint,
// with that one body (a replayed notification queues a fetch already queued;
// a replayed status request returns a status). A request signed for one
// member opens no other.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, keyed by
	// the ring's token, of a first line "ferry ring request", then the
	// recipient's identity, method, path, TimestampHeader and body, each
	// followed by a newline.
	SignatureHeader = "X-Ferry-Ring-Signature"
	// TimestampHeader is the request's time, in Unix seconds.
	TimestampHeader = "X-Ferry-Ring-Timestamp"
	// MaxSkew is how far a request's time may be from the receiver's clock.
	MaxSkew = 30 * time.Second
)

// signature computes the signature of a request to member recipient. Its
// first line keeps it apart from a Lease's signature (lease.go), made with
// the same token.
func signature(token, recipient, method, path, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(token))
	for _, part := range []string{"ferry ring request", recipient, method, path, timestamp} {
		mac.Write([]byte(part))
		mac.Write([]byte{'\n'})
	}
	mac.Write(body)
	mac.Write([]byte{'\n'})
	return mac.Sum(nil)
}

// sign adds the timestamp and signature headers to req, whose body is body,
// for member recipient.
func sign(req *http.Request, token, recipient string, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(signature(token, recipient, req.Method, req.URL.Path, ts, body)))
}

// verify reports whether r, whose body is body, carries a valid signature
// by token for member self, made within MaxSkew of now. An empty token or
// self verifies nothing.
func verify(r *http.Request, self, token string, body []byte, now time.Time) bool {
	if token == "" || self == "" {
		return false
	}
	ts := r.Header.Get(TimestampHeader)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > MaxSkew || skew < -MaxSkew {
		return false
	}
	got, ok := cutPrefix(r.Header.Get(SignatureHeader), "sha256=")
	if !ok {
		return false
	}
	sum, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	return hmac.Equal(sum, signature(token, self, r.Method, r.URL.Path, ts, body))
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	return s[len(prefix):], true
}
