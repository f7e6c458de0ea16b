package source

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// requireNoCanary fails if the token shows up anywhere in err's text.
func requireNoCanary(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), token)
	assert.NotContains(t, fmt.Sprintf("%+v %#v", err, err), token)
}

func TestTheTokenNeverAppearsInErrors(t *testing.T) {
	s := seed(t)
	t.Run("a wrong token", func(t *testing.T) {
		r, err := newSource(t).Open(RepoOptions{Name: "m", URL: s.url, Branch: "main", Auth: Auth{Token: token + "-wrong"}, AllowLocal: true})
		require.NoError(t, err)
		_, err = r.Head(t.Context())
		requireNoCanary(t, err)
		assert.NotContains(t, err.Error(), token+"-wrong")
	})
	t.Run("an unreachable host", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		r, err := newSource(t).Open(RepoOptions{Name: "m", URL: "http://" + addr + "/models.git", Branch: "main", Auth: Auth{Token: token}, AllowLocal: true})
		require.NoError(t, err)
		_, err = r.Head(t.Context())
		requireNoCanary(t, err)
	})
	t.Run("a branch that does not exist", func(t *testing.T) {
		r, err := newSource(t).Open(RepoOptions{Name: "m", URL: s.url, Branch: "nope", Auth: Auth{Token: token}, AllowLocal: true})
		require.NoError(t, err)
		_, err = r.Head(t.Context())
		requireNoCanary(t, err)
		assert.Contains(t, err.Error(), "branch nope does not exist")
	})
	t.Run("a push refused by the server", func(t *testing.T) {
		r := s.open(t, newSource(t))
		head, err := r.Head(t.Context())
		require.NoError(t, err)
		_, err = r.Commit(t.Context(), Change{Branch: "main", Base: head, Message: "m", Files: map[string][]byte{"x": []byte("y")}})
		require.NoError(t, err)
		s.wt.Write(t, "other", "z")
		s.wt.Commit(t, "moved")
		s.wt.Push(t)
		requireNoCanary(t, r.Push(t.Context(), "main"))
	})
}

func TestARedirectToAnotherHostNeverReceivesTheToken(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"), r.URL.String())
		mu.Unlock()
		http.Error(w, "not here", http.StatusNotFound)
	}))
	defer other.Close()
	// "localhost" and "127.0.0.1" are different hosts to an HTTP client.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherURL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer redirector.Close()

	r, err := newSource(t).Open(RepoOptions{Name: "m", URL: redirector.URL + "/models.git", Branch: "main", Auth: Auth{Token: token}, AllowLocal: true})
	require.NoError(t, err)
	_, err = r.Head(t.Context())
	requireNoCanary(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, leaked, "the redirect must have been followed for this test to mean anything")
	for _, l := range leaked {
		assert.NotContains(t, l, token)
		assert.NotContains(t, l, "Basic ", "no credentials of any kind go to another host")
	}
}

func TestURLRules(t *testing.T) {
	cases := []struct {
		url        string
		allowLocal bool
		ok         bool
		mention    string
	}{
		{"https://github.com/acme/models.git", false, true, ""},
		{"ssh://git@github.com/acme/models.git", false, true, ""},
		{"git@github.com:acme/models.git", false, true, ""},
		{"https://x-access-token:" + token + "@github.com/acme/models.git", false, false, "auth.tokenEnv"},
		{"https://ada@github.com/acme/models.git", false, false, "user name"},
		{"ssh://git:hunter2@github.com/acme/models.git", false, false, "password or token"},
		{"http://127.0.0.1:8080/models.git", false, false, "allowLocal"},
		{"http://127.0.0.1:8080/models.git", true, true, ""},
		{"file:///srv/git/models.git", false, false, "allowLocal"},
		{"file:///srv/git/models.git", true, true, ""},
		{"/srv/git/models.git", false, false, "local path"},
		{"./models", true, true, ""},
		{"ftp://example.com/models.git", true, false, "not supported"},
		{"", false, false, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			err := ValidateURL(tc.url, tc.allowLocal)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.mention)
			assert.NotContains(t, err.Error(), token)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

func TestSSHAuthProblemsAreClearErrors(t *testing.T) {
	key := testKey(t)
	t.Run("a key that does not parse", func(t *testing.T) {
		garbage := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nCANARYKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n")
		_, err := newSource(t).Open(RepoOptions{Name: "m", URL: "ssh://git@127.0.0.1/x.git", Branch: "main", Auth: Auth{SSHKey: garbage, KnownHosts: []byte("x")}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "SSH private key does not parse")
		assert.NotContains(t, err.Error(), "CANARYKEYMATERIAL")
	})
	t.Run("a key without known_hosts", func(t *testing.T) {
		_, err := newSource(t).Open(RepoOptions{Name: "m", URL: "ssh://git@127.0.0.1/x.git", Branch: "main", Auth: Auth{SSHKey: key}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "known_hosts")
	})
	t.Run("a host whose key is not in known_hosts is refused", func(t *testing.T) {
		addr := sshServer(t)
		_, otherHostKey, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		signer, err := ssh.NewSignerFromKey(otherHostKey)
		require.NoError(t, err)
		host, port, _ := net.SplitHostPort(addr)
		knownHosts := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(signer.PublicKey()))
		r, err := newSource(t).Open(RepoOptions{Name: "m", URL: "ssh://git@" + addr + "/x.git", Branch: "main", Auth: Auth{SSHKey: key, KnownHosts: []byte(knownHosts)}})
		require.NoError(t, err)
		_, err = r.Head(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "key mismatch")
		assert.NotContains(t, err.Error(), string(key))
	})
}

func testKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	return pem.EncodeToMemory(block)
}

// sshServer accepts SSH handshakes with a fresh host key and nothing more.
func sshServer(t *testing.T) string {
	t.Helper()
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(hostKey)
	require.NoError(t, err)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ssh.NewServerConn(c, cfg)
			}()
		}
	}()
	return ln.Addr().String()
}
