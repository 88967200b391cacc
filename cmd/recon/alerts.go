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

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/alerts"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/schemas"
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
	start("alerts feed", func(ctx context.Context) error { return feedAlerts(ctx, kc, svc, producer, st.Offsets, statePath, log) })
	return nil
}

// feedAlerts follows the journal, bank transactions and statements, and
// turns them into engine events. Records before the saved offsets only
// rebuild balances (the engine has already seen them).
func feedAlerts(ctx context.Context, kc bus.Config, svc *alerts.Service, producer *kgo.Client, saved map[string]map[int32]int64, statePath string, log *slog.Logger) error {
	cl, err := kgo.NewClient(kc.Opts(
		kgo.ConsumeTopics(schemas.TopicLedgerEntries, schemas.TopicBankTransactions, schemas.TopicStatements),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	book := ledger.NewBook()
	offsets := map[string]map[int32]int64{}
	for t, ps := range saved {
		offsets[t] = map[int32]int64{}
		for p, o := range ps {
			offsets[t][p] = o
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now().UTC()
		var fired []recon.Alert
		observe := func(ev alerts.Event) {
			as, err := svc.Observe(now, ev)
			if err != nil {
				log.Warn("alert not queued", "err", err)
			}
			fired = append(fired, as...)
		}
		touched := map[string]bool{}
		fs.EachRecord(func(r *kgo.Record) {
			replay := r.Offset < saved[r.Topic][r.Partition]
			if offsets[r.Topic] == nil {
				offsets[r.Topic] = map[int32]int64{}
			}
			offsets[r.Topic][r.Partition] = r.Offset + 1
			switch r.Topic {
			case schemas.TopicLedgerEntries:
				var e recon.Entry
				if json.Unmarshal(r.Value, &e) != nil || book.Apply(e) != nil {
					return
				}
				if !replay {
					for _, p := range e.Postings {
						touched[p.Account] = true
					}
				}
			case schemas.TopicBankTransactions:
				var t recon.BankTransaction
				if replay || json.Unmarshal(r.Value, &t) != nil || t.Type != recon.TypeTransaction || t.Status != recon.Booked {
					return
				}
				observe(alerts.TransactionSeen{ID: t.ID, Account: t.AccountIBAN, Direction: t.Direction, Amount: t.Amount, Currency: t.Currency})
				if t.MandateID != "" {
					observe(alerts.DirectDebitSeen{ID: t.ID, Return: t.ReturnReason != ""})
				}
			case schemas.TopicStatements:
				var st recon.Statement
				if replay || json.Unmarshal(r.Value, &st) != nil {
					return
				}
				observe(alerts.StatementReceived{Account: st.AccountIBAN, Date: st.ToDate, Currency: st.Currency, Check: st.BalanceCheck, Opening: st.OpeningBalance, Closing: st.ClosingBalance})
			}
		})
		for account := range touched {
			for _, b := range book.Balances(account, time.Time{}) {
				observe(alerts.BalanceChanged{Account: account, Currency: b.Currency, Balance: b.Balance})
			}
		}
		select {
		case <-tick.C:
			as, err := svc.Tick(now)
			if err != nil {
				log.Warn("alert not queued", "err", err)
			}
			fired = append(fired, as...)
		default:
		}
		if len(fired) > 0 {
			var recs []*kgo.Record
			for _, a := range fired {
				v, _ := json.Marshal(a)
				recs = append(recs, bus.Event{Topic: schemas.TopicAlerts, Key: a.ID, Type: schemas.TypeAlert, ID: a.ID, Source: "recon/alerts", Time: now, Value: v, Partition: -1}.Record(kc.Partitions))
			}
			if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				log.Warn("alerts not published to Kafka (delivery goes on)", "err", err)
			}
		}
		if len(fs.Records()) > 0 || len(fired) > 0 {
			if err := saveState(statePath, alertState{Offsets: offsets, Service: svc.State()}); err != nil {
				log.Warn("alerts state not saved", "err", err)
			}
		}
	}
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
