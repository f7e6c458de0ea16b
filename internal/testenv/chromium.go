package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumInstall is what installs the browser; it says what to do when it cannot.
const chromiumInstall = "hack/install-chromium.sh"

// ChromiumPath returns Debian's chromium ($CHROMIUM, else /usr/bin/chromium),
// running hack/install-chromium.sh first when it is missing (apt-get, as
// root). A test that cannot get it fails saying how to install it.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(root, chromiumInstall)).CombinedOutput()
	if _, statErr := os.Stat(path); err != nil || statErr != nil {
		t.Fatalf("chromium is missing at %s and %s could not install it (%v):\n%s\n"+
			"install it with `apt-get install -y chromium` as root (Debian), or set CHROMIUM to a Chromium binary",
			path, chromiumInstall, err, bytes.TrimSpace(out))
	}
	t.Logf("%s", bytes.TrimSpace(out))
	return path
}

// Chromium starts a headless chromium with a window of width × height and
// returns the context of its tab; the browser ends with the test. Flags: on
// a closed network chromium's background fetches (updates, sync, metrics)
// stall it, so they are off, and each call gets a fresh profile.
func Chromium(t testing.TB, width, height int) context.Context {
	t.Helper()
	path := ChromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first Do starts the browser and binds its life to its context, so
	// it gets no timeout of its own: a start that stalls is cut by cancelling.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium at %s: %v", path, err)
		}
	case <-time.After(time.Minute):
		cancelTab()
		cancelAlloc()
		t.Fatalf("chromium at %s did not start within a minute", path)
	}
	return ctx
}
