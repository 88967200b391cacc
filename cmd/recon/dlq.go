package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reconhq/recon/ingest"
)

const dlqUsage = `usage:
  recon dlq list    [--since 24h|RFC3339] [--source S] [--all] [--json] [flags]
  recon dlq redrive (--id ID | --source S) [--dry-run] [flags]

list prints the dead letters of recon.dead-letters.v1 (one row per id, oldest
first; redriven ones only with --all). redrive re-publishes their raw bytes
through the path they came from (file, transactions, loans, webhook, or back
to the matcher's input for matcher/route and matcher/post), marks each one
redriven, and skips those already redriven. Identity keys make a redrive of
money that did post a duplicate, never a second posting.`

// dlq runs `recon dlq list|redrive`.
func dlq(ctx context.Context, args []string, stdout io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "redrive") {
		fmt.Fprintln(os.Stderr, dlqUsage)
		return 2
	}
	cmd := args[0]
	var s settings
	fs := newFlags("dlq "+cmd, &s)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, dlqUsage+"\n\nflags:"); fs.PrintDefaults() }
	source := fs.String("source", "", "only dead letters from this source (file, transactions, loans, webhook, matcher/route, matcher/post)")
	var since, id string
	var all, asJSON, dryRun bool
	if cmd == "list" {
		fs.StringVar(&since, "since", "", "only dead letters since a duration ago (24h) or an RFC 3339 instant")
		fs.BoolVar(&all, "all", false, "include dead letters already redriven")
		fs.BoolVar(&asJSON, "json", false, "JSON Lines instead of a table")
	} else {
		fs.StringVar(&id, "id", "", "redrive the dead letter with this id")
		fs.BoolVar(&dryRun, "dry-run", false, "say what would be redriven and whether it would be accepted; publish nothing")
	}
	if code := s.parse(fs, args[1:]); code != 0 {
		return code
	}
	kc, err := s.cluster("dlq")
	if err != nil {
		return fail("%v", err)
	}
	var from time.Time
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			from = time.Now().Add(-d)
		} else if from, err = time.Parse(time.RFC3339, since); err != nil {
			return fail("--since %q is neither a duration (24h) nor an RFC 3339 instant", since)
		}
	}
	if cmd == "redrive" && id == "" && *source == "" {
		return fail("redrive needs --id ID or --source S (see 'recon dlq list')")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	letters, err := ingest.ReadDeadLetters(ctx, kc)
	if err != nil {
		return fail("%v", err)
	}
	var pick []ingest.Letter
	for _, l := range letters {
		if *source != "" && l.Source != *source || id != "" && l.ID != id || !from.IsZero() && l.At.Before(from) {
			continue
		}
		if cmd == "list" && l.Redriven != nil && !all {
			continue
		}
		pick = append(pick, l)
	}
	if cmd == "list" {
		printLetters(stdout, pick, asJSON)
		return 0
	}
	if id != "" && len(pick) == 0 {
		return fail("no dead letter %q", id)
	}

	cl, err := client(ctx, kc)
	if err != nil {
		return fail("%v", err)
	}
	defer cl.Close()
	in := ingest.New(cl, kc, ingest.NewMetrics(nil))
	in.Files = oneShotFiles(kc, "dlq-redrive")
	defer in.Close()
	if wh := s.webhooks(); len(wh.BearerTokens)+len(wh.Secrets) > 0 { // for the account IBAN of webhook letters
		if err := in.EnableWebhooks(wh, &http.Client{Timeout: 15 * time.Second}); err != nil {
			return fail("bank webhooks: %v", err)
		}
	}
	code := 0
	done, skipped, failed := 0, 0, 0
	for _, l := range pick {
		if l.Redriven != nil {
			skipped++
			fmt.Fprintf(stdout, "%s\tskipped: redriven %s (%s)\n", l.ID, l.Redriven.Format(time.RFC3339), l.Result)
			continue
		}
		result, err := in.Redrive(ctx, l, dryRun)
		if err != nil {
			failed++
			code = 1
			fmt.Fprintf(stdout, "%s\tfailed: %v\n", l.ID, err)
			continue
		}
		done++
		fmt.Fprintf(stdout, "%s\t%s\n", l.ID, result)
	}
	verb := "redriven"
	if dryRun {
		verb = "would be redriven"
	}
	fmt.Fprintf(os.Stderr, "%d %s, %d skipped (already redriven), %d failed\n", done, verb, skipped, failed)
	return code
}

func printLetters(w io.Writer, letters []ingest.Letter, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, l := range letters {
			_ = enc.Encode(map[string]any{"id": l.ID, "source": l.Source, "where": l.Where, "reason": l.Reason,
				"size": len(l.Raw), "time": l.At, "seen": l.Seen, "record": l.Record, "redriven": l.Redriven})
		}
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tWHERE\tSIZE\tTIME\tREDRIVEN\tREASON")
	for _, l := range letters {
		red := "-"
		if l.Redriven != nil {
			red = l.Redriven.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", l.ID, l.Source, short(l.Where, 40), len(l.Raw), l.At.UTC().Format(time.RFC3339), red, short(l.Reason, 80))
	}
	_ = tw.Flush()
}

func short(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
