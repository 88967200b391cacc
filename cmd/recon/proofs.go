package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/proofs"
)

// startProofs runs the statement proofs (camt.053 closing balances against
// the ledger). RECON_PROOF_TIMEOUT (default 10m) is how long a statement
// waits for its transactions to be booked before it is reported incomplete.
func startProofs(kc bus.Config, reg *prometheus.Registry, log *slog.Logger, start func(string, func(context.Context) error)) error {
	timeout, err := time.ParseDuration(env("RECON_PROOF_TIMEOUT", "10m"))
	if err != nil {
		return fmt.Errorf("RECON_PROOF_TIMEOUT: %w", err)
	}
	svc, err := proofs.New(proofs.Config{Kafka: kc, Timeout: timeout, Log: log.With("component", "proofs")}, reg)
	if err != nil {
		return err
	}
	start("statement proofs", svc.Run)
	return nil
}
