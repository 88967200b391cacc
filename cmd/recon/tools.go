package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/analytics"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest"
	"github.com/reconhq/recon/ingest/bankfile"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/schemas"
)

func inspect(args []string) int {
	fs := flag.NewFlagSet("recon inspect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: recon inspect FILE...\n\nPrints every record of bank files — ISO 20022 (camt.052/053/054, pain.002, pacs.002,\npacs.004, pain.008, pain.001), SWIFT MT940/MT942, CFONB 120, told by their content —\nas JSON Lines on stdout, without Kafka. Exit 0 when every file was read, 1 when any\nwas rejected (one line on stderr per rejected file: file, where, why).")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	if !bankfile.Inspect(fs.Args(), os.Stdout, os.Stderr) {
		return 1
	}
	return 0
}

// verify reads every journal partition from the start and checks its
// hash chain; it names the first broken link.
func verify(ctx context.Context, args []string) int {
	var s settings
	fs := newFlags("ledger verify", &s)
	if code := s.parse(fs, args); code != 0 {
		return code
	}
	kc, err := s.kafka()
	if err != nil {
		return fail("%v", err)
	}
	parts := bus.Partitions(kc.Partitions)
	verifiers := map[int32]*ledger.Verifier{}
	for _, p := range parts {
		verifiers[p] = &ledger.Verifier{Partition: p}
	}
	_, err = bus.Replay(ctx, kc, schemas.TopicLedgerEntries, parts, func(r *kgo.Record) error {
		var e recon.Entry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return &ledger.BrokenLink{Partition: r.Partition, Offset: r.Offset, Reason: "unreadable entry: " + err.Error()}
		}
		return verifiers[r.Partition].Next(r.Offset, e)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "recon ledger verify: BROKEN: %v\n", err)
		return 1
	}
	total := int64(0)
	for _, p := range parts {
		total += verifiers[p].Entries
		fmt.Printf("partition %d: %d entries, chain intact\n", p, verifiers[p].Entries)
	}
	fmt.Printf("journal verified: %d entries in %d partitions\n", total, len(parts))
	return 0
}

func migrate(ctx context.Context, args []string) int {
	var s settings
	fs := newFlags("migrate", &s)
	if code := s.parse(fs, args); code != 0 {
		return code
	}
	if s.clickhouse == "" {
		return fail("migrate needs ClickHouse: set --clickhouse or RECON_CLICKHOUSE_ADDR")
	}
	conn, err := analytics.Open(s.clickhouse)
	if err != nil {
		return fail("clickhouse %s: %v", s.clickhouse, err)
	}
	defer conn.Close()
	if err := analytics.Migrate(ctx, conn, s.chDatabase); err != nil {
		return fail("migrate: %v", err)
	}
	fmt.Printf("ClickHouse database %s is up to date\n", s.chDatabase)
	return 0
}

// ingestFiles publishes bank files (ISO 20022, MT940/MT942, CFONB 120), one after another, with progress.
// Each file is streamed from disk (hashed, then read twice by ingest), so
// memory does not grow with it.
func ingestFiles(ctx context.Context, args []string) int {
	var s settings
	fs := newFlags("ingest file", &s)
	if code := s.parse(fs, args); code != 0 {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: recon ingest file [flags] PATH...")
		return 2
	}
	kc, err := s.cluster("ingest file")
	if err != nil {
		return fail("%v", err)
	}
	cl, err := client(ctx, kc)
	if err != nil {
		return fail("%v", err)
	}
	defer cl.Close()
	in := ingest.New(cl, kc, ingest.NewMetrics(nil))
	in.Files = oneShotFiles(kc, "ingest-file")
	defer in.Close()
	code := 0
	started := time.Now()
	for i, path := range fs.Args() {
		sum, err := ingestFile(ctx, in, path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: rejected: %v\n", path, err)
			code = 1
			continue
		}
		what := fmt.Sprintf("%s, %d transactions, %d statements", sum.Message, sum.Transactions, sum.Statements)
		if sum.Duplicate {
			what = "duplicate: published whole before, nothing published again"
		} else if len(sum.DeadLetters) > 0 {
			what += fmt.Sprintf(", %d records dead-lettered (recon dlq list)", len(sum.DeadLetters))
		}
		if sum.InvalidIBANs > 0 {
			what += fmt.Sprintf(", %d invalid IBANs", sum.InvalidIBANs)
		}
		fmt.Fprintf(os.Stderr, "[%d/%d] %s: %s (%.0f files/s)\n", i+1, fs.NArg(), path, what, float64(i+1)/time.Since(started).Seconds())
	}
	return code
}

// ingestFile hashes the file at path, then publishes it streaming.
func ingestFile(ctx context.Context, in *ingest.Ingest, path string) (ingest.FileSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return ingest.FileSummary{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ingest.FileSummary{}, fmt.Errorf("read %s: %w", path, err)
	}
	return in.FileFrom(ctx, path, f, hex.EncodeToString(h.Sum(nil)))
}

// oneShotFiles is the file configuration of a command that publishes files
// alongside a running server (recon ingest file, recon dlq redrive): its
// transactional ids are its own (<ClientID>-cli-<command>-<n>), so it
// neither fences the server's file producers (<ClientID>-ingest-files-<n>)
// nor is fenced by them, while a rerun of the same command fences what a
// killed run left open. Two of them at once need distinct --instance.
func oneShotFiles(kc bus.Config, command string) ingest.FileConfig {
	return ingest.FileConfig{TransactionalID: kc.ClientID + "-cli-" + command, Producers: 1}
}
