package alerts

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the alerts component's Prometheus metrics. Labels carry rule
// and endpoint names from the config, never an IBAN or an amount.
type Metrics struct {
	fired      *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered, for tests and benchmarks). It panics if they are already
// registered there, as prometheus.MustRegister does.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recon_alerts_fired_total",
			Help: "Alert edges raised by the engine, by rule and state (firing, resolved).",
		}, []string{"rule", "state"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recon_alert_deliveries_total",
			Help: "Webhook delivery outcomes by endpoint: delivered, retry, gone, dead_letter, duplicate.",
		}, []string{"endpoint", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recon_alert_delivery_duration_seconds",
			Help:    "Duration of one webhook delivery attempt.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
	}
	if reg != nil {
		reg.MustRegister(m.fired, m.deliveries, m.duration)
	}
	return m
}
