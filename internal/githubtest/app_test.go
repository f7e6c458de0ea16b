package githubtest

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testAppID = 4711

// newAppServer starts a server playing an App installed on the organisation
// acme (installation 7) and the user octo (installation 8).
func newAppServer(t *testing.T, ttl time.Duration) (*Server, func(mutate ...func(*jwt.RegisteredClaims)) string) {
	t.Helper()
	key, _ := NewAppKey(t)
	s := New(t, Options{App: &AppOptions{
		ID: testAppID, PublicKey: &key.PublicKey, TokenTTL: ttl,
		Installations: []AppInstallation{{ID: 7, Account: "acme", Org: true}, {ID: 8, Account: "octo"}},
	}})
	sign := func(mutate ...func(*jwt.RegisteredClaims)) string {
		now := time.Now()
		c := jwt.RegisteredClaims{
			Issuer:    strconv.Itoa(testAppID),
			IssuedAt:  jwt.NewNumericDate(now.Add(-30 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(90 * time.Second)),
		}
		for _, m := range mutate {
			m(&c)
		}
		signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
		require.NoError(t, err)
		return "Bearer " + signed
	}
	return s, sign
}

func TestAMintedTokenIsAcceptedUntilItExpires(t *testing.T) {
	s, sign := newAppServer(t, 2*time.Second)
	status, body := raw(t, s, http.MethodPost, "/app/installations/7/access_tokens", sign(), "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	token, _ := body["token"].(string)
	require.NotEmpty(t, token)
	assert.Regexp(t, `^ghs_`, token)
	expires, err := time.Parse(time.RFC3339, body["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(2*time.Second), expires, 1100*time.Millisecond)

	status, _ = raw(t, s, http.MethodGet, "/repos/acme/models/pulls", "token "+token, "")
	assert.Equal(t, http.StatusOK, status, "a REST route takes the installation token")
	assert.True(t, s.ValidInstallationToken(token))
	assert.Equal(t, []string{token}, s.InstallationTokens())
	assert.Equal(t, 1, s.Mints(7))

	time.Sleep(time.Until(expires)) // waits out the 2 s expiry set above
	status, body = raw(t, s, http.MethodGet, "/repos/acme/models/pulls", "token "+token, "")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "Bad credentials", body["message"])
	assert.False(t, s.ValidInstallationToken(token))
}

func TestTheAppsRoutesRefuseWhatGitHubRefuses(t *testing.T) {
	s, sign := newAppServer(t, 0)
	otherKey, _ := NewAppKey(t)
	otherSigned, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: strconv.Itoa(testAppID), IssuedAt: jwt.NewNumericDate(time.Now().Add(-time.Second)), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute)),
	}).SignedString(otherKey)
	require.NoError(t, err)
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: strconv.Itoa(testAppID)}).SignedString([]byte("secret"))
	require.NoError(t, err)

	for _, tc := range []struct {
		name, auth, message string
	}{
		{"a request without a JWT is refused", "", jwtUndecodable},
		{"an installation token is not a JWT", "token ghs_abc", jwtUndecodable},
		{"a JWT signed with another key is refused", "Bearer " + otherSigned, jwtUndecodable},
		{"a JWT signed HS256 is refused", "Bearer " + hs256, jwtUndecodable},
		{"a JWT of another App is refused", sign(func(c *jwt.RegisteredClaims) { c.Issuer = "1" }), jwtNoApp},
		{"a JWT whose issuer is not a number is refused", sign(func(c *jwt.RegisteredClaims) { c.Issuer = "ferry" }), jwtBadIss},
		{"an expired JWT is refused", sign(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Second)) }), jwtBadExp},
		{"a JWT without exp is refused", sign(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }), jwtBadExp},
		{"a JWT expiring in more than ten minutes is refused", sign(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(11 * time.Minute)) }), jwtFarExp},
		{"a JWT issued in the future is refused", sign(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Minute)) }), jwtBadIat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := raw(t, s, http.MethodPost, "/app/installations/7/access_tokens", tc.auth, "")
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, tc.message, body["message"])
		})
	}
	assert.Empty(t, s.InstallationTokens(), "nothing was minted")
}

func TestInstallationsAreFoundByTheirAccountsKind(t *testing.T) {
	s, sign := newAppServer(t, 0)
	for _, tc := range []struct {
		name, path string
		status     int
		id         float64
	}{
		{"an organisation's installation is found under /orgs", "/orgs/ACME/installation", http.StatusOK, 7},
		{"an organisation is not a user", "/users/acme/installation", http.StatusNotFound, 0},
		{"a user's installation is found under /users", "/users/octo/installation", http.StatusOK, 8},
		{"a user is not an organisation", "/orgs/octo/installation", http.StatusNotFound, 0},
		{"an account without the App has no installation", "/orgs/other/installation", http.StatusNotFound, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := raw(t, s, http.MethodGet, tc.path, sign(), "")
			require.Equal(t, tc.status, status)
			if tc.id != 0 {
				assert.Equal(t, tc.id, body["id"])
				assert.Equal(t, float64(testAppID), body["app_id"])
			}
		})
	}
	status, _ := raw(t, s, http.MethodPost, "/app/installations/99/access_tokens", sign(), "")
	assert.Equal(t, http.StatusNotFound, status, "no token for an installation that does not exist")
}

func TestTheAppAndItsBotAreDescribed(t *testing.T) {
	s, sign := newAppServer(t, 0)
	status, app := raw(t, s, http.MethodGet, "/app", sign(), "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, DefaultAppSlug, app["slug"])
	assert.Equal(t, float64(testAppID), app["id"])

	status, body := raw(t, s, http.MethodPost, "/app/installations/8/access_tokens", sign(), "")
	require.Equal(t, http.StatusCreated, status)
	token := body["token"].(string)
	login, id := s.AppBot()
	status, bot := raw(t, s, http.MethodGet, "/users/"+login, "token "+token, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, login, bot["login"])
	assert.Equal(t, float64(id), bot["id"])
	assert.Equal(t, "Bot", bot["type"])

	status, _ = raw(t, s, http.MethodGet, "/app", "token "+token, "")
	assert.Equal(t, http.StatusUnauthorized, status, "the App's routes take its JWT, not a token")
}

func TestARevokedTokenIsRefusedBeforeItExpires(t *testing.T) {
	s, sign := newAppServer(t, 0)
	_, body := raw(t, s, http.MethodPost, "/app/installations/7/access_tokens", sign(), "")
	token := body["token"].(string)
	s.RevokeInstallationTokens()
	status, _ := raw(t, s, http.MethodGet, "/repos/acme/models/pulls", "Bearer "+token, "")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.False(t, s.ValidInstallationToken(token))
}
