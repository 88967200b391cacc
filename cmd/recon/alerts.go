package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconhq/recon/alerts"
	"github.com/reconhq/recon/bus"
)

// legacyAlertState is the state file alerts-state.json an earlier version
// kept under the data dir: read once, as a migration to the state topic,
// then renamed alerts-state.json.migrated.
type legacyAlertState struct {
	Offsets map[string]map[int32]int64 `json:"offsets"`
	Service json.RawMessage            `json:"service"`
}

func startAlerts(ctx context.Context, s settings, kc bus.Config, reg *prometheus.Registry, log *slog.Logger, mux *http.ServeMux, start func(string, func(context.Context) error)) error {
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
	migrate, err := legacyState(filepath.Join(s.dataDir, "alerts-state.json"), log)
	if err != nil {
		return err
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
	// the state is on recon.alerts-state.v1 under the instance name, and the
	// transactional id follows it too: an alerts process started with the
	// same --instance on another machine takes the state over and fences
	// the one it replaces
	start("alerts feed", func(ctx context.Context) error {
		return svc.Feed(ctx, alerts.FeedConfig{Kafka: kc, Instance: s.instance, Migrate: migrate, Log: log})
	})
	return nil
}

// legacyState reads an earlier version's state file, if there is one.
func legacyState(path string, log *slog.Logger) (*alerts.Migration, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alerts state %s: %w", path, err)
	}
	var st legacyAlertState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("alerts state %s: %w (move it away to start from the state topic)", path, err)
	}
	return &alerts.Migration{Offsets: st.Offsets, Service: st.Service, Done: func() {
		if err := os.Rename(path, path+".migrated"); err != nil {
			log.Warn("alerts state file migrated to Kafka but not renamed: it is ignored once the topic holds state", "path", path, "err", err)
			return
		}
		log.Info("alerts state file migrated to Kafka", "path", path)
	}}, nil
}
