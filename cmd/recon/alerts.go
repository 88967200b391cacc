package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/alerts"
	"github.com/reconhq/recon/bus"
)

// alertState is what survives a restart of the alerts component: how far
// it read, the engine's edges and the deliveries, written after each batch.
type alertState struct {
	Offsets map[string]map[int32]int64 `json:"offsets"`
	Service json.RawMessage            `json:"service"` // engine edges, deliveries, recent alerts
}

func startAlerts(ctx context.Context, s settings, kc bus.Config, reg *prometheus.Registry, log *slog.Logger, producer *kgo.Client, mux *http.ServeMux, start func(string, func(context.Context) error)) error {
	if s.alertsFile == "" {
		log.Info("alerts off: no rules file (set --alerts-config or RECON_ALERTS_CONFIG)")
		return nil
	}
	cfg, err := alerts.LoadConfig(s.alertsFile)
	if err != nil {
		return fmt.Errorf("alerts config: %w", err)
	}
	svc, err := alerts.New(cfg, alerts.Options{Registry: reg, OnDeadLetter: func(d alerts.Delivery) {
		log.Warn("alert dead-lettered", "alert", d.AlertID, "endpoint", d.Endpoint, "reason", d.Reason)
	}})
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return err
	}
	statePath := filepath.Join(s.dataDir, "alerts-state.json")
	var st alertState
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("alerts state %s: %w (move it away to start afresh)", statePath, err)
		}
		if err := svc.Restore(st.Service); err != nil {
			return fmt.Errorf("alerts state %s: %w (move it away to start afresh)", statePath, err)
		}
	}
	mux.Handle("/v1/alerts", svc.Handler())
	mux.Handle("/v1/alerts/", svc.Handler())
	start("alerts delivery", svc.Run)
	start("alerts rules reload", func(ctx context.Context) error {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		svc.Watch(ctx, s.alertsFile, t.C, func(err error) { log.Warn("alerts config not reloaded", "err", err) })
		return nil
	})
	start("alerts feed", func(ctx context.Context) error {
		return svc.Feed(ctx, alerts.FeedConfig{Kafka: kc, Producer: producer, Saved: st.Offsets, Log: log,
			OnBatch: func(offsets map[string]map[int32]int64) {
				if err := saveState(statePath, alertState{Offsets: offsets, Service: svc.State()}); err != nil {
					log.Warn("alerts state not saved", "err", err)
				}
			}})
	})
	return nil
}

func saveState(path string, st alertState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
