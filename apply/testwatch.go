package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
)

// testOutcome is what became of one test Job.
type testOutcome struct {
	finished, passed bool
	reason           string
	duration         time.Duration
	state            string // what it is doing, while not finished
}

// followTests watches the test Jobs and their pods (one LIST and WATCH of
// each per namespace) until every test has an outcome or ctx ends, and
// returns the outcomes in the order of jobs.
//
// A test's outcome is its pod's as soon as the pod ends: with backoffLimit 0
// and one pod, the Job follows its pod, and reading the pod saves the second
// the Job controller waits before syncing a Job whose pods changed (its
// SyncJobBatchPeriod). The Job's own conditions count too: past its
// activeDeadlineSeconds the controller fails the Job and removes the pod.
func (a *Applier) followTests(ctx context.Context, inv Inventory, jobs []*unstructured.Unstructured) []testOutcome {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// These reads are cancelled when the tests end, and their errors handled
	// here; client-go would log each cancelled read as an error.
	ctx = klog.NewContext(ctx, logr.Discard())

	var mu sync.Mutex
	index := make(map[string]int, len(jobs)) // namespace/name -> position
	byNamespace := map[string][]string{}
	out := make([]testOutcome, len(jobs))
	for i, j := range jobs {
		index[j.GetNamespace()+"/"+j.GetName()] = i
		byNamespace[j.GetNamespace()] = append(byNamespace[j.GetNamespace()], j.GetName())
		out[i].state = "not started yet"
	}
	changed := make(chan struct{}, 1)
	settle := func(key string, o testOutcome) {
		mu.Lock()
		defer mu.Unlock()
		i, ok := index[key]
		if !ok || out[i].finished {
			return
		}
		out[i] = o
		select {
		case changed <- struct{}{}:
		default:
		}
	}

	var wg sync.WaitGroup
	for ns, names := range byNamespace {
		slices.Sort(names)
		jobsAPI := a.workloads.BatchV1().Jobs(ns)
		podsAPI := a.workloads.CoreV1().Pods(ns)
		jobs := lister{
			list:  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return jobsAPI.List(ctx, o) },
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return jobsAPI.Watch(ctx, o) },
		}
		pods := lister{
			list:  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return podsAPI.List(ctx, o) },
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return podsAPI.Watch(ctx, o) },
		}
		wg.Go(func() {
			jobs.follow(ctx, metav1.ListOptions{LabelSelector: inv.selector() + "," + labelTest}, func(obj runtime.Object) {
				if job, ok := obj.(*batchv1.Job); ok {
					settle(ns+"/"+job.Name, jobTestOutcome(job))
				}
			})
		})
		wg.Go(func() {
			pods.follow(ctx, metav1.ListOptions{LabelSelector: labelJobName + " in (" + strings.Join(names, ",") + ")"}, func(obj runtime.Object) {
				if pod, ok := obj.(*corev1.Pod); ok {
					settle(ns+"/"+pod.Labels[labelJobName], podTestOutcome(pod))
				}
			})
		})
	}
	defer wg.Wait()
	defer cancel()

	for {
		mu.Lock()
		done := !slices.ContainsFunc(out, func(o testOutcome) bool { return !o.finished })
		snapshot := slices.Clone(out)
		mu.Unlock()
		if done {
			return snapshot
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return snapshot
		}
	}
}

// lister lists and watches one resource in one namespace.
type lister struct {
	list  func(context.Context, metav1.ListOptions) (runtime.Object, error)
	watch func(context.Context, metav1.ListOptions) (watch.Interface, error)
}

// follow lists, then watches, until ctx ends, handing every object seen to
// seen; a watch that ends is started again from a new list.
func (l lister) follow(ctx context.Context, opts metav1.ListOptions, seen func(runtime.Object)) {
	for ctx.Err() == nil {
		list, err := l.list(ctx, opts)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		items, _ := listItems(list)
		for _, item := range items {
			seen(item)
		}
		o := opts
		o.ResourceVersion = resourceVersion(list)
		w, err := l.watch(ctx, o)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				seen(ev.Object)
			}
		}
		w.Stop()
	}
}

// listItems returns a typed list's items as objects.
func listItems(l runtime.Object) ([]runtime.Object, error) {
	switch l := l.(type) {
	case *batchv1.JobList:
		out := make([]runtime.Object, len(l.Items))
		for i := range l.Items {
			out[i] = &l.Items[i]
		}
		return out, nil
	case *corev1.PodList:
		out := make([]runtime.Object, len(l.Items))
		for i := range l.Items {
			out[i] = &l.Items[i]
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected list %T", l)
}

func resourceVersion(l runtime.Object) string {
	if m, ok := l.(metav1.ListInterface); ok {
		return m.GetResourceVersion()
	}
	return ""
}

// jobTestOutcome reads a Job's Complete and Failed conditions. (kstatus
// calls a Job that has started Current, which is right for an apply and
// wrong for a test.)
func jobTestOutcome(job *batchv1.Job) testOutcome {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		end := c.LastTransitionTime.Time
		switch c.Type {
		case batchv1.JobComplete:
			return testOutcome{finished: true, passed: true, duration: since(job.Status.StartTime, end)}
		case batchv1.JobFailed:
			reason := c.Reason
			if c.Message != "" {
				reason += ": " + c.Message
			}
			return testOutcome{finished: true, reason: reason, duration: since(job.Status.StartTime, end)}
		}
	}
	return testOutcome{state: fmt.Sprintf("Job active %d, succeeded %d, failed %d", job.Status.Active, job.Status.Succeeded, job.Status.Failed)}
}

// podTestOutcome reads a test pod's phase and its container's end.
func podTestOutcome(pod *corev1.Pod) testOutcome {
	var end time.Time
	reason := pod.Status.Reason
	if pod.Status.Message != "" {
		reason += ": " + pod.Status.Message
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			end = t.FinishedAt.Time
			if pod.Status.Phase == corev1.PodFailed {
				reason = fmt.Sprintf("container %s exited %d (%s)", cs.Name, t.ExitCode, t.Reason)
				if t.Message != "" {
					reason += ": " + t.Message
				}
			}
		}
	}
	if end.IsZero() {
		end = time.Now()
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return testOutcome{finished: true, passed: true, duration: since(pod.Status.StartTime, end)}
	case corev1.PodFailed:
		return testOutcome{finished: true, reason: strings.TrimPrefix(reason, ": "), duration: since(pod.Status.StartTime, end)}
	}
	return testOutcome{state: "pod " + pod.Name + " " + string(pod.Status.Phase)}
}

func since(start *metav1.Time, end time.Time) time.Duration {
	if start == nil || end.Before(start.Time) {
		return 0
	}
	return end.Sub(start.Time)
}
