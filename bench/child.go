package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/alerts"
	"github.com/reconhq/recon/analytics"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/matcher/service"
)

// Components the bench runs as child processes of the recon binary, one
// process each so that each one's peak memory can be read.
const (
	ComponentMatcher = "matcher"
	ComponentSink    = "sink"
	ComponentAlerts  = "alerts"
	ComponentRelay   = "relay"
)

// ChildSpec tells a child process what to run; it travels as JSON in the
// child's --spec flag.
type ChildSpec struct {
	Brokers    []string `json:"brokers"`
	Partitions int32    `json:"partitions"`
	Run        string   `json:"run"`
	// Matcher.
	Instance       string `json:"instance,omitempty"`
	MaxPollRecords int    `json:"max_poll_records,omitempty"`
	CPUProfile     string `json:"cpu_profile,omitempty"`
	// DataDir holds the matcher's local state stores ("" in memory).
	DataDir string `json:"data_dir,omitempty"`
	// Sink.
	ClickHouse string `json:"clickhouse,omitempty"`
	Database   string `json:"database,omitempty"`
	Group      string `json:"group,omitempty"`
	// Alerts: the rules file, and where each input partition starts.
	AlertsConfig string                     `json:"alerts_config,omitempty"`
	Start        map[string]map[int32]int64 `json:"start,omitempty"`
	// Relay: the three topics of the baseline and the instant its input
	// starts (records before belong to other runs).
	RelayTopics [3]string `json:"relay_topics,omitempty"`
	SinceMillis int64     `json:"since_millis,omitempty"`
}

func (s ChildSpec) kafka() bus.Config {
	c := bus.DefaultConfig()
	c.Brokers, c.Partitions, c.ClientID = s.Brokers, s.Partitions, "recon-bench-"+s.Run
	return c
}

// RunChild runs one component until ctx ends. It writes "ready" on out
// when the component runs; the matcher writes "loans N" lines as its table
// fills and "held R P" whenever the partitions whose state its route and
// post stages hold change.
func RunChild(ctx context.Context, component string, spec ChildSpec, out io.Writer) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if spec.CPUProfile != "" {
		f, err := os.Create(spec.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	switch component {
	case ComponentMatcher:
		return runMatcher(ctx, spec, log, out)
	case ComponentSink:
		sink, err := analytics.New(analytics.Config{Addr: spec.ClickHouse, Database: spec.Database, Brokers: spec.Brokers, Group: spec.Group, NoMigrate: true}, nil, prometheus.NewRegistry())
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "ready")
		return sink.Run(ctx)
	case ComponentAlerts:
		return runAlerts(ctx, spec, log, out)
	case ComponentRelay:
		return runRelay(ctx, spec, out)
	}
	return fmt.Errorf("bench: unknown component %q", component)
}

func runMatcher(ctx context.Context, spec ChildSpec, log *slog.Logger, out io.Writer) error {
	reg := prometheus.NewRegistry()
	svc, err := service.New(service.Config{Kafka: spec.kafka(), Instance: spec.Instance, MaxPollRecords: spec.MaxPollRecords, Log: log, DataDir: spec.DataDir}, reg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go report(ctx, svc, reg, out)
	return svc.Run(ctx)
}

// report writes the matcher's ready, loans and held lines: held as soon
// as it changes (a rebalance is timed by it), loans every 200 ms.
func report(ctx context.Context, svc *service.Service, reg *prometheus.Registry, out io.Writer) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	ready := svc.Ready()
	lastRoute, lastPost, ticks := -1, -1, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ready:
			ready = nil
			n, _ := gauge(reg, "recon_matcher_loans")
			fmt.Fprintf(out, "loans %d\nready\n", int64(n))
		case <-t.C:
			if route, post := svc.Held(); route != lastRoute || post != lastPost {
				lastRoute, lastPost = route, post
				fmt.Fprintf(out, "held %d %d\n", route, post)
			}
			if ticks++; ticks%10 == 0 {
				if n, ok := gauge(reg, "recon_matcher_loans"); ok {
					fmt.Fprintf(out, "loans %d\n", int64(n))
				}
			}
		}
	}
}

func gauge(reg *prometheus.Registry, name string) (float64, bool) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// runAlerts is the alerts component as `recon alerts` wires it (engine,
// dispatcher and the same feed), except that its feed starts at the bench's
// start offsets instead of replaying the broker's history, and neither
// restores nor writes the state topic.
func runAlerts(ctx context.Context, spec ChildSpec, log *slog.Logger, out io.Writer) error {
	cfg, err := alerts.LoadConfig(spec.AlertsConfig)
	if err != nil {
		return err
	}
	svc, err := alerts.New(cfg, alerts.Options{Registry: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	kc := spec.kafka()
	errs := make(chan error, 1)
	go func() { errs <- svc.Run(ctx) }()
	fmt.Fprintln(out, "ready")
	if err := svc.Feed(ctx, alerts.FeedConfig{Kafka: kc, TransactionalID: kc.ClientID + "-bench-alerts-" + spec.Run, Start: spec.Start, Log: log}); err != nil {
		return err
	}
	return <-errs
}

// runRelay is the baseline: a bare read-committed consume → produce relay
// over two transactional hops (in → mid → out), the same number of hops as
// the matcher (bank transactions → routed → journal), each hop a
// GroupTransactSession like the matcher's stages, copying each record's
// key, value and partition.
func runRelay(ctx context.Context, spec ChildSpec, out io.Writer) error {
	kc := spec.kafka()
	ready := make(chan struct{}, 2)
	errs := make(chan error, 2)
	for hop := 0; hop < 2; hop++ {
		go func() { errs <- relayHop(ctx, kc, spec, hop, ready) }()
	}
	for i := 0; i < 2; i++ {
		select {
		case <-ready:
		case err := <-errs:
			return err
		case <-ctx.Done():
			return nil
		}
	}
	fmt.Fprintln(out, "ready")
	err := <-errs
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func relayHop(ctx context.Context, kc bus.Config, spec ChildSpec, hop int, ready chan<- struct{}) error {
	from, to := spec.RelayTopics[hop], spec.RelayTopics[hop+1]
	group := fmt.Sprintf("recon-bench-relay-%s-%d", spec.Run, hop)
	var signalled bool
	sess, err := kgo.NewGroupTransactSession(kc.Opts(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(from),
		kgo.TransactionalID(group),
		kgo.TransactionTimeout(30*time.Second),
		kgo.SessionTimeout(10*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(spec.SinceMillis)),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			if !signalled {
				signalled = true
				ready <- struct{}{}
			}
		}),
	)...)
	if err != nil {
		return err
	}
	defer sess.Close()
	max := spec.MaxPollRecords
	if max <= 0 {
		max = 2000
	}
	for {
		fs := sess.PollRecords(ctx, max)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("relay hop %d: poll: %w", hop, err)
		}
		if fs.Empty() {
			continue
		}
		if err := sess.Begin(); err != nil {
			return err
		}
		recs := make([]*kgo.Record, 0, len(fs.Records()))
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, &kgo.Record{Topic: to, Key: r.Key, Value: r.Value, Headers: r.Headers, Partition: r.Partition})
		})
		if err := sess.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			_, _ = sess.End(ctx, kgo.TryAbort)
			return fmt.Errorf("relay hop %d: produce: %w", hop, err)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			return fmt.Errorf("relay hop %d: commit: %w", hop, err)
		}
		if !committed {
			return errors.New("relay: transaction aborted (rebalance)")
		}
	}
}
