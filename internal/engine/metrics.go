package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reconcileDuration *prometheus.HistogramVec
	reconciles        *prometheus.CounterVec
	objectsApplied    *prometheus.CounterVec
	fetchDuration     *prometheus.HistogramVec
	renders           *prometheus.CounterVec
	skipped           *prometheus.CounterVec
	queueDepth        prometheus.GaugeFunc
	info              *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, depth func() float64) (*metrics, error) {
	m := &metrics{
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_reconcile_duration_seconds", Help: "Time to reconcile one environment, by result.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"repository", "environment", "result"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_reconcile_total", Help: "Reconciles of an environment, by result.",
		}, []string{"repository", "environment", "result"}),
		objectsApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_objects_applied_total", Help: "Objects handled by applies, by action.",
		}, []string{"action"}),
		fetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_git_fetch_duration_seconds", Help: "Time to resolve a repository's head, fetching when it moved.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}, []string{"repository"}),
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_renders_total", Help: "Renders of an environment.",
		}, []string{"repository", "environment"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_reconcile_skipped_total", Help: "New commits that touched none of an environment's inputs.",
		}, []string{"repository", "environment"}),
		queueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ferry_queue_depth", Help: "Work items waiting in the queue.",
		}, depth),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_environment_info", Help: "1 for each environment, labelled with its revision and phase.",
		}, []string{"repository", "environment", "revision", "phase"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reconcileDuration, m.reconciles, m.objectsApplied, m.fetchDuration, m.renders, m.skipped, m.queueDepth, m.info} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// setInfo keeps exactly one ferry_environment_info series per environment.
func (m *metrics) setInfo(repo, env, revision string, phase Phase) {
	m.info.DeletePartialMatch(prometheus.Labels{"repository": repo, "environment": env})
	m.info.WithLabelValues(repo, env, revision, string(phase)).Set(1)
}
