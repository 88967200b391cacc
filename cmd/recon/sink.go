package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconhq/recon/analytics"
	"github.com/reconhq/recon/bus"
)

func startSink(ctx context.Context, s settings, kc bus.Config, reg *prometheus.Registry, log *slog.Logger, start func(string, func(context.Context) error), readiness *[]func() error) error {
	if s.clickhouse == "" {
		log.Info("analytics off: no ClickHouse configured (set --clickhouse or RECON_CLICKHOUSE_ADDR); the ledger and the API work without it, and the sink catches up from Kafka when started later")
		return nil
	}
	sink, err := analytics.New(analytics.Config{Addr: s.clickhouse, Database: s.chDatabase, Brokers: kc.Brokers, FlushInterval: s.chFlush}, nil, reg)
	if err != nil {
		return err
	}
	start("analytics sink", sink.Run)
	return nil
}
