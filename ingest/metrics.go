package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	files       *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	requests    *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	spoolEvict  prometheus.Counter
	// invalidIBANs counts IBANs in published bank files that fail their
	// check (FileSummary.InvalidIBANs).
	invalidIBANs prometheus.Counter
}

// NewMetrics registers ingest's metrics on reg.
func NewMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		files:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_ingest_files_total", Help: "ISO 20022 files published, by message."}, []string{"message"}),
		deadLetters:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_ingest_dead_letters_total", Help: "Inputs refused and kept on the dead-letter topic, by source."}, []string{"source"}),
		requests:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_ingest_requests_total", Help: "Ingest HTTP requests by endpoint and status code."}, []string{"endpoint", "code"}),
		webhooks:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_ingest_webhooks_total", Help: "Bank webhook deliveries by outcome (accepted, duplicate, ignored, unauthorized, too_large, timeout, invalid, fetch_failed, unavailable, disabled)."}, []string{"outcome"}),
		spoolEvict:   prometheus.NewCounter(prometheus.CounterOpts{Name: "recon_ingest_spool_evicted_total", Help: "Spooled dead-letter files removed, oldest first, to keep the spool under its quota."}),
		invalidIBANs: prometheus.NewCounter(prometheus.CounterOpts{Name: "recon_ingest_file_invalid_ibans_total", Help: "IBANs in published bank files that fail the registry length or MOD 97-10 check (the files are published all the same)."}),
	}
	if reg != nil {
		reg.MustRegister(m.files, m.deadLetters, m.requests, m.webhooks, m.spoolEvict, m.invalidIBANs)
	}
	return m
}
