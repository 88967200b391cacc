package analytics

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rows         *prometheus.CounterVec // table
	duplicates   *prometheus.CounterVec // table
	insertErrors prometheus.Counter
	poison       *prometheus.CounterVec // topic
	skipped      *prometheus.CounterVec // topic, type
	lag          *prometheus.GaugeVec   // topic, partition
	batches      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recon_sink_rows_total", Help: "Rows written to ClickHouse, by table.",
		}, []string{"table"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recon_sink_duplicate_rows_total", Help: "Rows not written because ClickHouse already had them (replay after a crash or failed write), by table.",
		}, []string{"table"}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recon_sink_insert_errors_total", Help: "Failed ClickHouse writes (each is retried).",
		}),
		poison: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recon_sink_poison_records_total", Help: "Records that could not become rows, stored in dead_letters, by topic.",
		}, []string{"topic"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recon_sink_skipped_records_total", Help: "Records deliberately not stored, by topic and record type.",
		}, []string{"topic", "type"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recon_sink_lag_records", Help: "Records in Kafka not yet written to ClickHouse, by topic and partition.",
		}, []string{"topic", "partition"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recon_sink_batches_total", Help: "Batches made durable in ClickHouse.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.duplicates, m.insertErrors, m.poison, m.skipped, m.lag, m.batches)
	}
	return m
}
