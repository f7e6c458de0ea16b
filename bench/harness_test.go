package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// buildFerry compiles cmd/ferry into a temporary directory.
func buildFerry(b *testing.B) string {
	b.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "ferry")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build ferry: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveProcess is a running `ferry serve`.
type serveProcess struct {
	cmd  *exec.Cmd
	base string
	logs *os.File
}

// startServe runs `ferry serve` with the given ferry.yaml and waits until it
// is ready, for at most timeout.
func startServe(b *testing.B, bin, config, addr string, env []string, timeout time.Duration) *serveProcess {
	b.Helper()
	logs, err := os.CreateTemp(b.TempDir(), "ferry-*.log")
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, base: "http://" + addr, logs: logs}
	b.Cleanup(p.stop)
	err = wait.PollUntilContextTimeout(b.Context(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	})
	if err != nil {
		tail, _ := os.ReadFile(logs.Name())
		b.Fatalf("ferry serve not ready: %v\n%s", err, lastLines(string(tail), 30))
	}
	return p
}

func (p *serveProcess) stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
		}
	}
}

// rss returns the current and peak resident set size of the process, in MiB.
func (p *serveProcess) rss(b *testing.B) (current, peak float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		if n, _ := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); n == 1 {
			current = kb / 1024
		}
		if n, _ := fmt.Sscanf(sc.Text(), "VmHWM: %f kB", &kb); n == 1 {
			peak = kb / 1024
		}
	}
	return current, peak
}

func (p *serveProcess) status(b *testing.B) string {
	resp, err := http.Get(p.base + "/api/v1/status")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
