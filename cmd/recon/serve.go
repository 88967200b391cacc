package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/api"
	"github.com/reconhq/recon/auth"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/collect"
	"github.com/reconhq/recon/console"
	"github.com/reconhq/recon/ingest"
	"github.com/reconhq/recon/matcher/service"
	"github.com/reconhq/recon/schemas"
)

type components struct{ ingest, match, sink, alerts, view bool }

var allComponents = components{ingest: true, match: true, sink: true, alerts: true, view: true}

// serve runs the chosen components until ctx ends; the demo prints its
// summary to stdout. Only main exits.
func serve(ctx context.Context, name string, args []string, want components, stdout io.Writer) int {
	var s settings
	fs := newFlags(name, &s)
	if name == "run" {
		fs.BoolVar(&s.demo, "demo", false, "load the shipped demo (loans, a camt.053, webhook-style events), print a summary, keep serving")
	}
	if code := s.parse(fs, args); code != 0 {
		return code
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// ---- API access control (auth/): tokens first, so a bad one stops recon before it starts anything ----
	tokens, err := s.apiTokens()
	if err != nil {
		return fail("%v (RECON_API_TOKENS / RECON_API_TOKENS_FILE)", err)
	}
	if tokens.Enabled() && s.demo {
		return fail("--demo posts to the API without a token: run the demo without RECON_API_TOKENS")
	}
	// ---- end API access control ----
	kc, err := s.kafka()
	if err != nil {
		return fail("%v", err)
	}
	if s.brokers == "" {
		if name != "run" {
			return fail("%s needs a Kafka cluster: set --brokers or RECON_KAFKA_BROKERS (only 'recon run' embeds a broker)", name)
		}
		stopBroker, err := startEmbedded(ctx, s, &kc, log)
		if err != nil {
			return fail("%v", err)
		}
		defer stopBroker()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	producer, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		return fail("kafka client: %v", err)
	}
	defer producer.Close()
	setupCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = bus.EnsureTopics(setupCtx, producer, kc)
	cancel()
	if err != nil {
		return fail("%v (is Kafka reachable at %v?)", err, kc.Brokers)
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := func(what string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", what, err)
			}
		}()
	}

	mux := http.NewServeMux()
	var readiness []func() error
	var view *api.View
	if want.match {
		svc, err := startMatcher(s, kc, reg, log, start)
		if err != nil {
			return fail("%v", err)
		}
		readiness = append(readiness, svc.NotReady)
	}
	if want.view || want.ingest {
		view = api.NewView(log)
		start("ledger view", func(ctx context.Context) error { return view.Run(ctx, kc) })
	}
	if want.ingest {
		in, err := startIngest(ctx, s, kc, producer, reg, log, view)
		if err != nil {
			return fail("%v", err)
		}
		// closed after the HTTP server stopped (deferred calls run last in,
		// first out): the file producers end no transaction midway
		defer in.Close()
		in.Register(mux)
	}
	if want.sink {
		if err := startSink(ctx, s, kc, reg, log, start, &readiness); err != nil {
			return fail("%v", err)
		}
	}
	if want.alerts {
		if err := startAlerts(ctx, s, kc, reg, log, mux, start); err != nil {
			return fail("%v", err)
		}
		// statement proofs run with alerts (their first consumer), rules file or not
		if err := startProofs(kc, reg, log, start); err != nil {
			return fail("statement proofs: %v", err)
		}
	}
	registerAPI(mux, &api.API{View: view, Kafka: kc, Producer: producer, Now: time.Now, Ready: allReady(readiness)})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	registerExports(mux, kc) // GET /v1/exports/{fec,gl.csv,trial-balance} (export/)
	// ---- console (console/) and API access control (auth/) ----
	console.Register(mux)
	if tokens.Enabled() {
		log.Info("HTTP API access control on", "tokens", tokens.Names())
	} else {
		log.Warn("HTTP API ACCESS CONTROL IS OFF: anyone who reaches " + s.httpAddr + " may read the ledger, assign suspense items and publish loans; set RECON_API_TOKENS or RECON_API_TOKENS_FILE")
	}
	handler := tokens.Middleware(mux, log, auth.NewMetrics(reg))
	// ---- end console and access control ----

	ln, err := net.Listen("tcp", s.httpAddr)
	if err != nil {
		return fail("listen on %s: %v (set --http or RECON_HTTP_ADDR)", s.httpAddr, err)
	}
	start("http", serveHTTP(ln, handler))
	log.Info("recon serving", "command", name, "http", "http://"+ln.Addr().String(), "kafka", kc.Brokers)

	if s.demo {
		start("demo", func(ctx context.Context) error {
			return runDemo(ctx, stdout, "http://"+ln.Addr().String(), strings.Join(kc.Brokers, ","), view)
		})
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-errs:
		log.Error("component failed", "err", err)
		code = 1
	}
	stop()
	wg.Wait()
	return code
}

// allReady is ready when every component is.
func allReady(readiness []func() error) func() error {
	return func() error {
		for _, r := range readiness {
			if err := r(); err != nil {
				return err
			}
		}
		return nil
	}
}

// registerAPI serves the read model and suspense actions when this process
// follows the journal, else /healthz alone.
func registerAPI(mux *http.ServeMux, a *api.API) {
	if a.View != nil {
		a.Register(mux)
		return
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Ready(); err != nil {
			api.NotReady(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// startEmbedded starts recon run's embedded broker on the data dir,
// repairing what a killed run left (repairEmbedded); the function returned
// stops it and marks the stop clean once the broker saved its state.
func startEmbedded(ctx context.Context, s settings, kc *bus.Config, log *slog.Logger) (func(), error) {
	dir := filepath.Join(s.dataDir, "kafka")
	cluster, err := bus.Embedded(dir, s.kafkaPort, kc.Partitions)
	if err != nil {
		return nil, fmt.Errorf("%v (is another recon running? choose --kafka-port, or set --brokers)", err)
	}
	stop := func() {
		cluster.Close()
		markCleanStop(dir, log)
	}
	kc.Brokers = cluster.ListenAddrs()
	log.Info("embedded Kafka-protocol broker", "addr", kc.Brokers[0], "data", dir)
	if err := repairEmbedded(ctx, dir, *kc, log); err != nil {
		cluster.Close() // not marked clean: the next start repairs again
		return nil, err
	}
	return stop, nil
}

// startMatcher starts the matcher and the expected-payments tracker
// (collect/: settles, rejects, returns collections and disbursements).
func startMatcher(s settings, kc bus.Config, reg prometheus.Registerer, log *slog.Logger, start func(string, func(context.Context) error)) (*service.Service, error) {
	alloc, err := allocation()
	if err != nil {
		return nil, err
	}
	ref, err := loanReference()
	if err != nil {
		return nil, err
	}
	svc, err := service.New(service.Config{Kafka: kc, Instance: s.instance, Log: log, OwnAccounts: ownAccounts(), Allocation: alloc, LoanReference: ref, DataDir: s.dataDir}, reg)
	if err != nil {
		return nil, err
	}
	start("matcher", svc.Run)
	start("expected payments", collect.NewLoop(collect.LoopConfig{Kafka: kc, Log: log}).Run)
	return svc, nil
}

// startIngest prepares the producer API, file uploads and bank webhooks:
// it fences what a previous run's file producers left open and remembers
// the files already published.
func startIngest(ctx context.Context, s settings, kc bus.Config, producer *kgo.Client, reg prometheus.Registerer, log *slog.Logger, view *api.View) (*ingest.Ingest, error) {
	in := ingest.New(producer, kc, ingest.NewMetrics(reg))
	in.SpoolDir = filepath.Join(s.dataDir, "dead-letters")
	in.Known = ingest.Known{Loan: view.LoanRecord, Holder: view.Holder}
	in.Files.MaxRecordsPerTransaction = s.fileTxnRecords
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := in.FenceFiles(fctx)
	cancel()
	if err != nil {
		log.Warn("file producers not started: what a previous run left open is aborted at its transaction timeout", "err", err)
	}
	if err := in.LoadFiles(ctx); err != nil {
		log.Warn("files published before are not remembered (identity keys still prevent double posting)", "err", err)
	}
	if wh := s.webhooks(); len(wh.BearerTokens)+len(wh.Secrets) > 0 {
		if err := in.EnableWebhooks(wh, &http.Client{Timeout: 15 * time.Second}); err != nil {
			in.Close()
			return nil, fmt.Errorf("bank webhooks: %w", err)
		}
	} else {
		log.Info("bank webhooks off: set RECON_WEBHOOK_BEARER_TOKENS or RECON_WEBHOOK_SECRETS to receive them")
	}
	return in, nil
}

// serveHTTP serves until ctx ends, then returns once the requests in flight
// are answered (up to 30 s), so that what is closed after (the ingest's
// file producers) is not in use.
func serveHTTP(ln net.Listener, handler http.Handler) func(context.Context) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute}
	return func(ctx context.Context) error {
		shut := make(chan struct{})
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
			close(shut)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		<-shut
		return nil
	}
}

// cleanStopFile, in the embedded broker's data dir, says its last run
// stopped cleanly; it is removed at start, so a run killed leaves none.
const cleanStopFile = "recon-clean-stop"

// repairEmbedded ends the transactions a killed run left without an abort
// marker (see bus.RepairAfterCrash), when the data dir holds a previous
// run's log and no proof that it stopped cleanly.
func repairEmbedded(ctx context.Context, dir string, kc bus.Config, log *slog.Logger) error {
	marker := filepath.Join(dir, cleanStopFile)
	_, statErr := os.Stat(marker)
	_ = os.Remove(marker)
	if statErr == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "meta.json")); err != nil {
		return nil // a new data dir
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	var topics []string
	for _, t := range schemas.Topics {
		topics = append(topics, t.Name)
	}
	n, err := bus.RepairAfterCrash(rctx, kc, topics)
	if err != nil {
		return fmt.Errorf("embedded broker: its last run did not stop cleanly and its transactions could not be repaired: %w; "+
			"if this persists, move %s away (its topics are lost; recon starts empty) and start again", err, dir)
	}
	log.Info("embedded broker: its last run did not stop cleanly; transactions it left open are aborted", "aborted", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func markCleanStop(dir string, log *slog.Logger) {
	if err := os.WriteFile(filepath.Join(dir, cleanStopFile), nil, 0o644); err != nil {
		log.Warn("embedded broker: clean stop not recorded (the next start checks its transactions)", "err", err)
	}
}
