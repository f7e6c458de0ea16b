package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reconcileDuration *prometheus.HistogramVec
	reconciles        *prometheus.CounterVec
	objectsApplied    *prometheus.CounterVec
	fetchDuration     *prometheus.HistogramVec
	fetchFailures     *prometheus.CounterVec
	renders           *prometheus.CounterVec
	skipped           *prometheus.CounterVec
	queueDepth        prometheus.GaugeFunc
	info              *infoCollector
}

func newMetrics(reg prometheus.Registerer, depth func() float64, statuses func() []Status) (*metrics, error) {
	m := &metrics{
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_reconcile_duration_seconds", Help: "Time to reconcile one environment, from render to the end of its pipeline, by result.",
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
		fetchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_git_fetch_failures_total", Help: "Fetches of a repository that failed (its Git server did not answer as it should).",
		}, []string{"repository"}),
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_renders_total", Help: "Renders of an environment.",
		}, []string{"repository", "environment"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_reconcile_skipped_total", Help: "New commits that touched none of an environment's inputs.",
		}, []string{"repository", "environment"}),
		queueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ferry_queue_depth", Help: "Work items waiting in the main and urgent queues.",
		}, depth),
		info: &infoCollector{statuses: statuses, desc: prometheus.NewDesc("ferry_environment_info",
			"1 for each environment, labelled with its revision, phase and health.",
			[]string{"repository", "environment", "revision", "phase", "health"}, nil)},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reconcileDuration, m.reconciles, m.objectsApplied, m.fetchDuration, m.fetchFailures, m.renders, m.skipped, m.queueDepth, m.info} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// infoCollector reports ferry_environment_info from the statuses at scrape
// time, so each environment has exactly one series at every instant: there
// is no delete-then-set for a scrape to fall between.
type infoCollector struct {
	statuses func() []Status
	desc     *prometheus.Desc
}

func (c *infoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *infoCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.statuses() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, s.Repository, s.Environment, s.Revision, string(s.Phase), s.Health)
	}
}

// infoSeries is what the info collector reads.
func (e *Engine) infoSeries() []Status { return e.Status() }
