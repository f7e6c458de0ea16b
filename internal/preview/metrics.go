package preview

import "github.com/prometheus/client_golang/prometheus"

// metrics are the pool's: how previews ended, and how long the posted ones took.
type metrics struct {
	outcomes *prometheus.CounterVec
	duration prometheus.Histogram
}

// Outcomes of a preview, the values of ferry_previews_total's label.
var outcomes = []string{"posted", "failed", "cancelled", "skipped", "retried"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_previews_total",
			Help: "Pull request previews by outcome: posted, failed, cancelled (closed or superseded), skipped (no head ref), retried.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ferry_preview_duration_seconds",
			Help:    "Time from a preview's start (after coalescing) to its comment and status being posted.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	for _, o := range outcomes {
		m.outcomes.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.outcomes, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) outcome(o string) { m.outcomes.WithLabelValues(o).Inc() }
