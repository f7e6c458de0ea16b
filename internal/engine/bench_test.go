package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-gitops/ferry/promote"
)

// BenchmarkHealthyToPullRequest measures the promotion budget: from the
// moment dev is healthy at a new version (its tests start: Jobs kwok
// completes at once) to the moment the promotion pull request on the test
// GitHub server carries that version. Each trial pins a new version in dev,
// pushes and notifies; the engine's status is sampled every millisecond.
//
// The benchmark also reports ferry's own part: healthy → test pod created,
// plus test pod ended (as a watch sees it) → pull request updated; the rest
// is the cluster running the test.
//
//	go test ./internal/engine -run '^$' -bench HealthyToPullRequest -benchtime 1x -timeout 30m
func BenchmarkHealthyToPullRequest(b *testing.B) {
	const trials = 40
	h := newHarness(b)
	gh := h.gitHub()
	h.commit(map[string]string{"models/fraud-detector/model.yaml": modelWithTests("")}, "fraud-detector with a smoke test")
	h.start(h.promoting(gh))
	jobs := watchJobs(b, h.prefix+"-dev")
	for range b.N {
		var healthyToPR, pushToPR, ferryPart []time.Duration
		for i := range trials {
			version := fmt.Sprintf("2.%d.%d", i, time.Now().UnixNano()%1000)
			push := time.Now()
			head := h.commit(map[string]string{"environments/dev/models.yaml": pin(version)}, "dev "+version)
			h.eng.Notify(h.repo)
			var healthy time.Time
			title := promote.Title("fraud-detector", version, "staging")
			deadline := time.Now().Add(time.Minute)
			for {
				if healthy.IsZero() {
					if s := h.status("dev"); s.Revision == head && (s.Phase == Testing || s.Phase == Checking || s.Phase == Promoting || s.Phase == Idle) {
						healthy = time.Now()
					}
				}
				if prs := gh.PullRequests(); len(prs) == 1 && prs[0].Title == title {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("trial %d: no pull request for %s within a minute; dev: %+v", i, version, h.status("dev"))
				}
				time.Sleep(time.Millisecond)
			}
			done := time.Now()
			if healthy.IsZero() {
				healthy = done // the status moved past Testing between two samples
			}
			healthyToPR = append(healthyToPR, done.Sub(healthy))
			pushToPR = append(pushToPR, done.Sub(push))
			created, completed := jobs.times(head)
			if !created.IsZero() && !completed.IsZero() {
				ferryPart = append(ferryPart, created.Sub(healthy)+done.Sub(completed))
			}
		}
		p50, p99 := percentile(healthyToPR, 50), percentile(healthyToPR, 99)
		b.ReportMetric(float64(percentile(ferryPart, 50).Milliseconds()), "ferry-part-p50-ms")
		b.ReportMetric(float64(percentile(ferryPart, 99).Milliseconds()), "ferry-part-p99-ms")
		b.ReportMetric(float64(p50.Milliseconds()), "healthy-to-PR-p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), "healthy-to-PR-p99-ms")
		b.ReportMetric(float64(percentile(pushToPR, 50).Milliseconds()), "push-to-PR-p50-ms")
		// Kargo's pull request step polls every 10 to 30 s: at best a PR
		// waits half a 10 s interval on average.
		b.ReportMetric((5*time.Second).Seconds()/p50.Seconds(), "x-faster-than-kargo-best-case")
	}
}

// podWatch records when each test's pod appeared and ended, as a watch sees
// it, by the revision it tests (the short SHA its Job's name ends with).
type podWatch struct {
	mu             sync.Mutex
	created, ended map[string]time.Time
}

func watchJobs(b *testing.B, namespace string) *podWatch {
	w := &podWatch{created: map[string]time.Time{}, ended: map[string]time.Time{}}
	watcher, err := cluster.Client.CoreV1().Pods(namespace).Watch(b.Context(), metav1.ListOptions{LabelSelector: "ferry.dev/test"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(watcher.Stop)
	go func() {
		for ev := range watcher.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now, job := time.Now(), pod.Labels["batch.kubernetes.io/job-name"]
			short := job[strings.LastIndex(job, "-")+1:]
			w.mu.Lock()
			if _, seen := w.created[short]; !seen {
				w.created[short] = now
			}
			if _, seen := w.ended[short]; !seen && pod.Status.Phase == corev1.PodSucceeded {
				w.ended[short] = now
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *podWatch) times(rev string) (created, ended time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.created[rev[:12]], w.ended[rev[:12]]
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}
