package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// StopAPIServer stops the cluster's kube-apiserver the way `kwokctl stop
// cluster` stops each component (SIGKILL of the process its pid file names,
// then the pid file removed), and waits until the process is gone and the
// API no longer answers. etcd, the controllers and kwok keep running.
// StartAPIServer starts it again. Use a cluster of the test's own
// (NewCluster): every client of the cluster loses its API server.
func (c *Cluster) StopAPIServer(ctx context.Context) error {
	pidFile := filepath.Join(c.dir, "kwok", "clusters", c.Name, "pids", "kube-apiserver.pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("cluster %s: stop kube-apiserver: %w", c.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("cluster %s: stop kube-apiserver: pid file %s: %w", c.Name, pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cluster %s: stop kube-apiserver (pid %d): %w", c.Name, pid, err)
	}
	// kwokctl start skips a component whose pid file names a live process.
	if err := os.Remove(pidFile); err != nil {
		return fmt.Errorf("cluster %s: stop kube-apiserver: %w", c.Name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if !exited(pid) {
			return false, nil
		}
		_, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err != nil, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s: kube-apiserver (pid %d) still answers after SIGKILL: %w", c.Name, pid, err)
	}
	return nil
}

// StartAPIServer starts a kube-apiserver stopped by StopAPIServer with
// `kwokctl start cluster`, which starts the components that are not running
// with the arguments they were created with, and waits until the API server
// reports ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if _, err := c.run(ctx, 2*time.Minute, "start", "cluster", "--name", c.Name); err != nil {
		return err
	}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s: kube-apiserver not ready after start: %w (last: %v)", c.Name, err, last)
	}
	return nil
}

// exited reports whether process pid is gone, or a zombie nobody reaped yet
// (kwokctl detached it: its parent is init).
func exited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z' || stat[i+2] == 'X'
	}
	return false
}
