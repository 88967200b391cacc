package service

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records      *prometheus.CounterVec
	decisions    *prometheus.CounterVec
	aborts       *prometheus.CounterVec
	restarts     *prometheus.CounterVec
	loans        prometheus.Gauge
	loansRefused prometheus.Counter
	phase        *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		records:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_matcher_records_total", Help: "Records consumed by a matcher stage and committed."}, []string{"stage"}),
		decisions:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_matcher_decisions_total", Help: "Match decisions by outcome."}, []string{"outcome"}),
		aborts:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_matcher_transactions_aborted_total", Help: "Kafka transactions aborted by a matcher stage."}, []string{"stage"}),
		restarts:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_matcher_stage_restarts_total", Help: "Matcher stage loops torn down and restarted."}, []string{"stage"}),
		loans:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "recon_matcher_loans", Help: "Loans in the matcher's table."}),
		loansRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "recon_matcher_loan_records_refused_total", Help: "Records of the loans topic the matcher could not take (unparseable, or over the table's limits); each is logged with its coordinates."}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recon_matcher_transaction_phase_seconds",
			Help:    "Time a matcher stage's transaction spends in each phase: decide (the pure stage on the polled batch), produce (until the broker acknowledged every record) and commit (offsets and the transaction's end).",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}, []string{"stage", "phase"}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.decisions, m.aborts, m.restarts, m.loans, m.loansRefused, m.phase)
	}
	return m
}
