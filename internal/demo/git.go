package demo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
)

// repo is the demo's model repository: a bare repository on the local Git
// server and the work tree the demo commits in, as a person would.
type repo struct {
	bare, work, url string
	secret          []byte // the webhook secret ferry is started with
	deliveries      int
}

// startGit serves the model repository at gitAddr and pushes
// examples/model-repo into it.
func (d *demo) startGit(ctx context.Context) (*repo, error) {
	srv, err := testenv.StartGitServer(testenv.GitServerOptions{Root: filepath.Join(d.opts.state(), "git"), Addr: gitAddr})
	if err != nil {
		return nil, fmt.Errorf("start the Git server on %s (is another demo running? make demo-down): %w", gitAddr, err)
	}
	d.onStop(srv.Close)
	url, err := srv.CreateBareRepo(repoName)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	r := &repo{bare: srv.RepoDir(repoName), work: filepath.Join(d.opts.state(), "work"), url: url, secret: []byte(hex.EncodeToString(key))}
	if _, err := testenv.Git("", "clone", "--quiet", url, r.work); err != nil {
		return nil, err
	}
	if err := os.CopyFS(r.work, os.DirFS(filepath.Join(d.opts.Root, "examples", "model-repo"))); err != nil {
		return nil, fmt.Errorf("copy examples/model-repo: %w", err)
	}
	if _, err := r.git("checkout", "--quiet", "-B", "main"); err != nil {
		return nil, err
	}
	return r, r.commitAndPush("ml-models: two models, three environments")
}

func (r *repo) git(args ...string) (string, error) { return testenv.Git(r.work, args...) }

func (r *repo) commitAndPush(message string) error {
	if _, err := r.git("add", "--all"); err != nil {
		return err
	}
	if _, err := r.git("commit", "--quiet", "-m", message); err != nil {
		return err
	}
	_, err := r.git("push", "--quiet", "origin", "HEAD:refs/heads/main")
	return err
}

func (r *repo) head() (string, error) { return r.git("rev-parse", "HEAD") }

// pin edits an environment's pin file as a person would — with the same
// editor ferry's promotions use, so every other byte stays.
func (r *repo) pin(env string, p promote.Pin) error {
	file := filepath.Join(r.work, "environments", env, "models.yaml")
	content, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	edited, err := promote.EditPin("environments/"+env+"/models.yaml", content, p)
	if err != nil {
		return err
	}
	return os.WriteFile(file, edited, fs.FileMode(0o644))
}

// merge merges a promotion branch into main and pushes, as the reviewer who
// approves the promotion would.
func (r *repo) merge(branch string) (string, error) {
	if _, err := r.git("fetch", "--quiet", "origin", branch); err != nil {
		return "", err
	}
	if _, err := r.git("merge", "--quiet", "--no-ff", "-m", "Merge "+branch, "FETCH_HEAD"); err != nil {
		return "", err
	}
	if _, err := r.git("push", "--quiet", "origin", "HEAD:refs/heads/main"); err != nil {
		return "", err
	}
	return r.head()
}

// webhook tells ferry of a push as GitHub would: a push event to main,
// signed with the webhook secret.
func (r *repo) webhook(ctx context.Context, after string) (int, error) {
	r.deliveries++
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "after": after,
		"repository": map[string]any{"full_name": "local/" + repoName, "clone_url": r.url},
	})
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hookURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("demo-%d-%d", time.Now().Unix(), r.deliveries))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
