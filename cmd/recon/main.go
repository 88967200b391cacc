// Command recon runs the reconciliation pipeline: every component in one
// process (`recon run`), or one component per process to scale out, plus
// the tools around it (inspect, ledger verify, migrate).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `recon turns bank data (ISO 20022 files, bank webhooks, producers' events)
into loan repayments matched by virtual IBAN, a balanced double-entry ledger,
ClickHouse analytics and signed alert webhooks.

Usage:
  recon run      [flags]          every component in one process (embedded Kafka when no broker is set)
  recon ingest   [flags]          the HTTP ingest API only (producers, files, loans)
  recon ingest file [flags] PATH...  publish bank files (ISO 20022, MT940/942, CFONB 120)
  recon match    [flags]          the matcher only (scale out: run more, same group)
  recon sink     [flags]          the ClickHouse sink only
  recon alerts   [flags]          the alerts component only
  recon inspect  FILE...          print the records of bank files as JSON Lines, no Kafka
  recon ledger verify [flags]     check the journal's hash chains; names the first broken link
  recon migrate  [flags]          create or upgrade the ClickHouse schema
  recon dlq list|redrive [flags]  list dead letters; re-publish them through the path they came from
  recon bench    [flags]          seeded workload through the pipeline on real Kafka + ClickHouse; last line JSON
                                  (--state: grow history, then time restarts and a rebalance, read memory)
  recon collect  --due-by DATE --out FILE   SEPA direct debits (pain.008) of instalments due, published as expected payments
  recon disburse --loan ID --out FILE       transfers (pain.001, SCT Inst) paying loans out, published as expected payments
  recon track    [flags]          follow expected payments: settled, rejected, returned, overdue
  recon export   fec|gl|trial-balance [flags]  the FEC, the general-ledger CSV, the trial balance from the journal
  recon help     [command]        this text, or a command's flags

Environment (flags win): RECON_KAFKA_BROKERS, RECON_HTTP_ADDR, RECON_DATA_DIR,
RECON_CLICKHOUSE_ADDR, RECON_CLICKHOUSE_FLUSH (default 250ms), RECON_ALERTS_CONFIG,
RECON_INSTANCE, RECON_PARTITIONS,
RECON_OWN_ACCOUNTS (the lender's own IBANs: transfers between them are neutral),
RECON_BORROWER_ALLOCATION (oldest-due-first, the default, or pro-rata: a payment to a
borrower's virtual IBAN that names none of their loans),
RECON_LOAN_REFERENCE_FORMAT (a Go regexp, e.g. L-[0-9]{6}: a token of a remittance text
names a loan only when it matches whole; unset: any known loan id).
Bank webhooks (POST /v1/bank/webhooks), from the environment only:
RECON_WEBHOOK_BEARER_TOKENS and/or RECON_WEBHOOK_SECRETS (comma-separated; whsec_...),
RECON_BANK_API_BASE and RECON_BANK_API_TOKEN (to fetch thin events' transactions),
RECON_WEBHOOK_ACCOUNT_IBAN (the lender's account when the bank omits it).
Run 'recon <command> -h' for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return serve(ctx, "run", rest, allComponents, os.Stdout)
	case "ingest":
		if len(rest) > 0 && rest[0] == "file" {
			return ingestFiles(ctx, rest[1:])
		}
		return serve(ctx, "ingest", rest, components{ingest: true}, os.Stdout)
	case "match":
		return serve(ctx, "match", rest, components{match: true}, os.Stdout)
	case "sink":
		return serve(ctx, "sink", rest, components{sink: true}, os.Stdout)
	case "alerts":
		return serve(ctx, "alerts", rest, components{alerts: true}, os.Stdout)
	case "inspect":
		return inspect(rest)
	case "ledger":
		if len(rest) > 0 && rest[0] == "verify" {
			return verify(ctx, rest[1:])
		}
		fmt.Fprintln(os.Stderr, "usage: recon ledger verify [flags]")
		return 2
	case "migrate":
		return migrate(ctx, rest)
	case "dlq":
		return dlq(ctx, rest, os.Stdout)
	case "bench":
		return benchCmd(ctx, rest)
	case "collect":
		return collectCmd(ctx, rest)
	case "disburse":
		return disburseCmd(ctx, rest)
	case "track":
		return trackCmd(ctx, rest)
	case "export":
		return exportCmd(ctx, rest)
	case "help", "-h", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "-h"})
		}
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "recon: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
