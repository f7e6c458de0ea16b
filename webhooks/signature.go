package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// signatureHeader is GitHub's HMAC-SHA256 signature of the raw body. The older
// X-Hub-Signature (SHA-1) is never accepted.
const signatureHeader = "X-Hub-Signature-256"

// parseSignature returns the MAC in a "sha256=<64 hex>" header value.
func parseSignature(value string) ([]byte, bool) {
	hexMAC, ok := strings.CutPrefix(value, "sha256=")
	if !ok || len(hexMAC) != sha256.Size*2 {
		return nil, false
	}
	mac, err := hex.DecodeString(hexMAC)
	return mac, err == nil
}

// verify reports whether mac is the HMAC-SHA256 of the body (given in
// pieces, in order) under any of the secrets. Each comparison is
// constant-time, and every secret is tried, so the time taken does not tell
// which secret (if any) came close.
func verify(secrets [][]byte, body [][]byte, mac []byte) bool {
	ok := false
	for _, secret := range secrets {
		h := hmac.New(sha256.New, secret)
		for _, piece := range body {
			h.Write(piece)
		}
		if hmac.Equal(h.Sum(nil), mac) {
			ok = true
		}
	}
	return ok
}

// Sign returns the X-Hub-Signature-256 value GitHub would send for body.
// Tests and tools use it to send real signed requests.
func Sign(secret, body []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}
