package faulttest

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// APIProxy stands in front of a kube-apiserver for a process the test runs
// (ferry serve), so the test can stop that process's requests at a point of
// its choosing (SetGate). It forwards every request with the cluster's own
// credentials; the process reaches it with Kubeconfig.
type APIProxy struct {
	srv *httptest.Server

	mu   sync.Mutex
	gate *Gate
}

// NewAPIProxy starts a proxy to the cluster cfg reaches, and stops it when
// the test ends.
func NewAPIProxy(t testing.TB, cfg *rest.Config) *APIProxy {
	t.Helper()
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &APIProxy{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Authorization") // the cluster's credentials are the transport's
		},
		Transport: transport,
		// A request whose client went away (a killed process) is not an
		// error worth a log line.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		g := p.gate
		p.mu.Unlock()
		if g != nil {
			// Read the body first: the server notices a client that went
			// away (and cancels r's context) only once the body is read.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if g.admit(r.Context(), r) != nil {
				return // held until its client gave up: never forwarded
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.mu.Lock()
		if p.gate != nil {
			p.gate.Open()
		}
		p.mu.Unlock()
		p.srv.Close()
	})
	return p
}

// SetGate passes every later request through g; nil removes the gate.
func (p *APIProxy) SetGate(g *Gate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = g
}

// Kubeconfig writes a kubeconfig that reaches the cluster through the proxy
// (trusting its certificate, with no credentials of its own) and returns
// its path.
func (p *APIProxy) Kubeconfig(t testing.TB) string {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.srv.URL, CertificateAuthorityData: ca}
	cfg.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	cfg.CurrentContext = "proxy"
	path := filepath.Join(t.TempDir(), "proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
