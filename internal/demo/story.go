package demo

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/object"
	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/promote"
)

// The version the story carries from dev to prod.
var release = promote.Pin{Model: "fraud-detector", Version: "1.5.0", URI: "s3://ml-artifacts/fraud-detector/1.5.0"}

func (d *demo) run(ctx context.Context) (*Result, error) {
	d.begin("cleaning up what a previous run left")
	if err := Down(ctx, d.opts); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.opts.state(), 0o700); err != nil {
		return nil, err
	}

	d.begin("starting three Kubernetes clusters (etcd, kube-apiserver, controllers, kwok nodes): dev, staging, prod")
	configs, err := d.startClusters(ctx)
	if err != nil {
		return nil, err
	}
	d.begin("installing the InferenceService CRD, and a stand-in for KServe's controller that reports each InferenceService Ready")
	for _, env := range environments {
		if err := installCRD(ctx, configs[env]); err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		if err := standInForKServe(ctx, configs[env]); err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
	}

	d.begin("serving examples/model-repo from a local Git server")
	r, err := d.startGit(ctx)
	if err != nil {
		return nil, err
	}
	first, err := r.head()
	if err != nil {
		return nil, err
	}
	d.say("  %s main at %s", r.url, object.ShortSHA(first))

	d.begin("starting ferry serve --config examples/ferry.yaml")
	if err := d.startFerry(ctx, r); err != nil {
		return nil, err
	}
	d.say("  its dashboard, while the demo runs: %s/", statusURL)
	d.begin("ferry reconciles every environment to " + object.ShortSHA(first))
	if _, err := d.await(ctx, "dev, staging and prod healthy at "+object.ShortSHA(first), 2*time.Minute, allAt(first)); err != nil {
		return nil, err
	}

	d.begin(fmt.Sprintf("a data scientist pins %s %s in dev and pushes", release.Model, release.Version))
	if err := r.pin("dev", release); err != nil {
		return nil, err
	}
	if err := r.commitAndPush(fmt.Sprintf("%s %s in dev", release.Model, release.Version)); err != nil {
		return nil, err
	}
	head, err := r.head()
	if err != nil {
		return nil, err
	}
	if err := d.notify(ctx, r, head); err != nil {
		return nil, err
	}

	res := &Result{Kubeconfig: d.kubeconfig, GitDir: r.bare}
	from := "dev"
	for _, to := range []string{"staging", "prod"} {
		d.begin(fmt.Sprintf("%s applies %s %s, waits until healthy, runs its tests, and pushes a promotion branch to %s", from, release.Model, release.Version, to))
		st, err := d.await(ctx, from+" promoting to "+to, 2*time.Minute, promotedTo(from, to, head))
		if err != nil {
			return nil, err
		}
		branch := promotionOf(st[from], to).Branch
		res.Branches = append(res.Branches, branch)
		if err := d.showBranch(r, branch); err != nil {
			return nil, err
		}

		d.begin(fmt.Sprintf("a reviewer merges %s (standing in for a pull request review)", branch))
		if head, err = r.merge(branch); err != nil {
			return nil, err
		}
		if err := d.notify(ctx, r, head); err != nil {
			return nil, err
		}
		from = to
	}
	d.begin(fmt.Sprintf("prod applies %s %s and becomes healthy", release.Model, release.Version))
	final, err := d.await(ctx, "prod healthy at "+object.ShortSHA(head), 2*time.Minute, func(st map[string]envStatus) bool {
		p := st["prod"]
		return p.Revision == head && p.Phase == engine.Idle && p.Health == engine.HealthHealthy && serves(p, release)
	})
	if err != nil {
		return nil, err
	}
	res.Final = final

	d.begin("ferry status")
	out, err := exec.CommandContext(ctx, d.opts.Ferry, "status", "--server", statusURL).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ferry status: %w: %s", err, out)
	}
	d.mu.Lock()
	d.out.Write(out)
	d.mu.Unlock()
	d.say("done: %s %s went from dev to prod, tested in each environment on the way", release.Model, release.Version)
	d.say("the clusters keep running; explore them with:")
	d.say("  export KUBECONFIG=%s", d.kubeconfig)
	kubectl, err := testenv.Binary("kubectl")
	if err != nil {
		kubectl = "kubectl"
	}
	d.say("  %s --context prod get deployments,hpa,inferenceservices -n ml-prod", kubectl)
	d.say("make demo-down deletes them")
	return res, nil
}

// showBranch prints what a promotion branch changes, as a reviewer sees it.
func (d *demo) showBranch(r *repo, branch string) error {
	if _, err := r.git("fetch", "--quiet", "origin", branch); err != nil {
		return err
	}
	diff, err := r.git("diff", "--unified=0", "HEAD", "FETCH_HEAD")
	if err != nil {
		return err
	}
	d.say("  %s changes:", branch)
	for _, line := range strings.Split(diff, "\n") {
		if strings.HasPrefix(line, "+++") || (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-")) && !strings.HasPrefix(line, "---") {
			d.say("    %s", line)
		}
	}
	return nil
}

// notify sends the push webhook GitHub would, and says what ferry answered.
func (d *demo) notify(ctx context.Context, r *repo, head string) error {
	code, err := r.webhook(ctx, head)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	d.say("  pushed %s; webhook to ferry: %d %s", object.ShortSHA(head), code, http.StatusText(code))
	if code != http.StatusAccepted {
		return fmt.Errorf("ferry answered the webhook %d, expected 202", code)
	}
	return nil
}

func allAt(rev string) func(map[string]envStatus) bool {
	return func(st map[string]envStatus) bool {
		for _, env := range environments {
			s := st[env]
			if s.Revision != rev || s.Phase != engine.Idle || s.Health != engine.HealthHealthy {
				return false
			}
		}
		return true
	}
}

// promotedTo holds once from is healthy at a commit at or after rev that
// carries the release, and has pushed its promotion to to.
func promotedTo(from, to, rev string) func(map[string]envStatus) bool {
	return func(st map[string]envStatus) bool {
		s := st[from]
		p := promotionOf(s, to)
		return s.Phase == engine.Idle && s.Verified == s.Revision && serves(s, release) &&
			p.Version == release.Version && (p.Action == "pushed" || p.Action == "unchanged") && s.Revision == rev
	}
}

func promotionOf(s envStatus, to string) engine.Promotion {
	i := slices.IndexFunc(s.Promotions, func(p engine.Promotion) bool { return p.Model == release.Model && p.To == to })
	if i < 0 {
		return engine.Promotion{}
	}
	return s.Promotions[i]
}

func serves(s envStatus, p promote.Pin) bool {
	return slices.Contains(s.Models, engine.ModelVersion{Name: p.Model, Version: p.Version})
}
