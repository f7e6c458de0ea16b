package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// BuildFerry compiles cmd/ferry into a temporary directory of the test, as
// the Dockerfile builds the image's binary (static, no cgo, stripped), and
// returns the binary's path. What tests and benchmarks measure is then what
// ships: a cgo build links in the plugin package, whose export of every
// symbol adds some 15 MB of dynamic symbol tables to the executable.
func BuildFerry(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/ferry")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ferry: %v\n%s", err, out)
	}
	return bin
}

// Ferry is a `ferry serve` process. Its ferry.yaml must listen on port 0
// (listen and adminListen: 127.0.0.1:0): the addresses it got are read from
// its "serving" log line, so no port is guessed.
type Ferry struct {
	// Public and Admin are the base URLs of the public and admin listeners.
	Public, Admin string

	cmd    *exec.Cmd
	logs   *os.File
	exited chan struct{}
	err    error // of the process, once exited is closed
}

// StartFerry runs `bin serve --config config --log-format json` with env
// added to the environment, and waits, at most timeout, until it says where
// it listens and its /readyz answers 200. The process is stopped when the
// test ends.
func StartFerry(t testing.TB, bin, config string, env []string, timeout time.Duration) *Ferry {
	t.Helper()
	logs, err := os.CreateTemp(t.TempDir(), "ferry-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", config, "--log-format", "json")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &Ferry{cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() { f.err = cmd.Wait(); close(f.exited) }()
	t.Cleanup(func() { f.Stop() })

	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case <-f.exited:
			return false, fmt.Errorf("ferry serve exited: %v", f.err)
		default:
		}
		if f.Public == "" && !f.readAddresses() {
			return false, nil
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.Public+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("ferry serve not ready within %s: %v\n%s", timeout, err, f.Tail(30))
	}
	return f
}

// readAddresses looks for the "serving" line and sets Public and Admin.
func (f *Ferry) readAddresses() bool {
	b, _ := os.ReadFile(f.logs.Name())
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct{ Msg, Addr, Admin string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
			f.Public, f.Admin = "http://"+line.Addr, "http://"+line.Admin
			return true
		}
	}
	return false
}

// Pid is the process's id.
func (f *Ferry) Pid() int { return f.cmd.Process.Pid }

// Status returns the body of the admin listener's /api/v1/status.
func (f *Ferry) Status(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.Admin+"/api/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// Kill ends the process with SIGKILL, as a crash or the OOM killer does, and
// waits until it is gone.
func (f *Ferry) Kill() {
	f.cmd.Process.Signal(syscall.SIGKILL)
	<-f.exited
}

// Stop asks the process to stop (SIGINT) and waits for it, at most 30 s
// (then it is killed); it returns the process's error, nil when it exited
// 0. Calling it again returns the same.
func (f *Ferry) Stop() error {
	select {
	case <-f.exited:
		return f.err
	default:
	}
	f.cmd.Process.Signal(os.Interrupt)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-f.exited:
		return f.err
	case <-timer.C:
		f.Kill()
		return errors.New("ferry serve did not stop within 30s of SIGINT: killed")
	}
}

// Tail returns the last n lines of the process's log.
func (f *Ferry) Tail(n int) string {
	b, _ := os.ReadFile(f.logs.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Logs returns the process's whole log.
func (f *Ferry) Logs() string {
	b, _ := os.ReadFile(f.logs.Name())
	return string(b)
}

// RSS returns the current and peak resident set size of the process, in MiB.
func (f *Ferry) RSS() (current, peak float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.Pid()))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var kb float64
		if n, _ := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); n == 1 {
			current = kb / 1024
		}
		if n, _ := fmt.Sscanf(sc.Text(), "VmHWM: %f kB", &kb); n == 1 {
			peak = kb / 1024
		}
	}
	return current, peak, sc.Err()
}
