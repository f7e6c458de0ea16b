package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// maxJWTLifetime is how far in the future GitHub accepts a JWT's exp.
const maxJWTLifetime = 10 * time.Minute

// authorizeJWT checks the App's JWT as GitHub does for the App's own routes,
// and answers 401 with GitHub's message when it does not pass: signed RS256
// with the App's key, iss the App's ID, iat in the past, exp in the future
// and at most ten minutes away.
func (s *Server) authorizeJWT(w http.ResponseWriter, r *http.Request) bool {
	if msg := s.app.checkJWT(r.Header.Get("Authorization"), time.Now()); msg != "" {
		writeError(w, http.StatusUnauthorized, msg, docsREST)
		return false
	}
	return true
}

// GitHub's messages for JWTs it refuses.
const (
	jwtUndecodable = "A JSON web token could not be decoded"
	jwtBadExp      = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	jwtFarExp      = "'Expiration time' claim ('exp') is too far in the future"
	jwtBadIat      = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	jwtBadIss      = "'Issuer' claim ('iss') must be an Integer"
	jwtNoApp       = "Integration not found"
)

// checkJWT returns GitHub's message for an Authorization header it would
// refuse on an App route, or "" for one it accepts.
func (a *app) checkJWT(header string, now time.Time) string {
	scheme, raw, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "bearer") || raw == "" {
		return jwtUndecodable
	}
	var claims jwt.RegisteredClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(strings.TrimSpace(raw), &claims, func(*jwt.Token) (any, error) {
		return a.opts.PublicKey, nil
	}); err != nil {
		return jwtUndecodable
	}
	switch {
	case claims.ExpiresAt == nil || !now.Before(claims.ExpiresAt.Time):
		return jwtBadExp
	case claims.ExpiresAt.Time.After(now.Add(maxJWTLifetime)):
		return jwtFarExp
	case claims.IssuedAt == nil || claims.IssuedAt.Time.After(now):
		return jwtBadIat
	}
	iss, err := strconv.ParseInt(claims.Issuer, 10, 64)
	if err != nil {
		return jwtBadIss
	}
	if iss != a.opts.ID {
		return jwtNoApp
	}
	return ""
}

// errAppOptions is why New refuses AppOptions.
var errAppOptions = errors.New("githubtest: Options.App needs an ID and a PublicKey")

// NewAppKey generates an App's key pair for one test: the private key (its
// PublicKey goes in AppOptions) and its PEM, PKCS#1 as GitHub hands it out,
// for the client under test.
func NewAppKey(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}
