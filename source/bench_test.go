package source

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// bigRepo serves a repository with 5,000 commits and 2,000 files, written
// with git fast-import, and returns a work tree to push new commits from.
func bigRepo(b *testing.B) (*testenv.GitServer, *testenv.WorkTree, string) {
	b.Helper()
	const files, commits = 2000, 5000
	srv := testenv.NewGitServer(b, testenv.GitServerOptions{Username: "x-access-token", Password: token})
	url := srv.CreateRepo(b, "big")
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = srv.RepoDir("big")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(stdin)
	for c := 1; c <= commits; c++ {
		msg := fmt.Sprintf("commit %d", c)
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\n", 1700000000+c, len(msg), msg)
		if c == 1 {
			for f := range files {
				content := fmt.Sprintf("file %d\n", f)
				fmt.Fprintf(w, "M 644 inline dir%02d/file%04d.yaml\ndata %d\n%s\n", f%50, f, len(content), content)
			}
		} else {
			f := c % files
			content := fmt.Sprintf("file %d rev %d\n", f, c)
			fmt.Fprintf(w, "M 644 inline dir%02d/file%04d.yaml\ndata %d\n%s\n", f%50, f, len(content), content)
		}
	}
	w.Flush()
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatal(err, stderr.String())
	}
	return srv, srv.Clone(b, "big"), url
}

// BenchmarkSource compares go-git (through source) with the git CLI on the
// same repository and server: the nothing-changed check (ls-remote) and the
// incremental fetch of one new commit.
// Run: go test ./source -run '^$' -bench Source -benchtime 100x
func BenchmarkSource(b *testing.B) {
	_, wt, url := bigRepo(b)
	authURL := strings.Replace(url, "http://", "http://x-access-token:"+token+"@", 1)

	r, err := newSource(b).Open(RepoOptions{Name: "big", URL: url, Branch: "main", Auth: Auth{Token: token}, AllowLocal: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Head(b.Context()); err != nil {
		b.Fatal(err)
	}
	cliClone := b.TempDir()
	if _, err := testenv.Git("", "clone", "--quiet", "--bare", "--single-branch", "--branch", "main", authURL, cliClone); err != nil {
		b.Fatal(err)
	}

	b.Run("nothing-changed/ferry", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Head(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nothing-changed/git-ls-remote", func(b *testing.B) {
		for b.Loop() {
			if _, err := testenv.Git(cliClone, "ls-remote", authURL, "refs/heads/main"); err != nil {
				b.Fatal(err)
			}
		}
	})

	n := 0
	push := func(b *testing.B) {
		n++
		wt.Write(b, fmt.Sprintf("dir%02d/file%04d.yaml", n%50, n), fmt.Sprintf("bench %d\n", n))
		wt.Commit(b, fmt.Sprintf("bench %d", n))
		wt.Push(b)
	}
	b.Run("fetch-one-commit/ferry", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			push(b)
			b.StartTimer()
			if _, err := r.Head(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fetch-one-commit/git-fetch", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			push(b)
			b.StartTimer()
			if _, err := testenv.Git(cliClone, "fetch", "--quiet", "--no-tags", authURL, "+refs/heads/main:refs/heads/main"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
