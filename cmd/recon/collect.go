package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/collect"
)

// accountFlags are the lender's account, shared by collect and disburse.
func accountFlags(fs *flag.FlagSet, a *collect.Account) {
	fs.StringVar(&a.Name, "name", env("RECON_LENDER_NAME", ""), "the lender's name as the bank knows it (env RECON_LENDER_NAME)")
	fs.StringVar(&a.IBAN, "iban", env("RECON_LENDER_IBAN", ""), "the lender's account IBAN (env RECON_LENDER_IBAN)")
	fs.StringVar(&a.BIC, "bic", env("RECON_LENDER_BIC", ""), "the lender's bank BIC (env RECON_LENDER_BIC); empty: IBAN-only")
}

// collectCmd builds the pain.008 of the instalments due by a date and
// publishes their expected items.
func collectCmd(ctx context.Context, args []string) int {
	var s settings
	fs := newFlags("collect", &s)
	var o collect.Options
	var dueBy, from, out string
	var dryRun bool
	fs.StringVar(&dueBy, "due-by", "", "collect the instalments due on or before this date, YYYY-MM-DD (required)")
	fs.StringVar(&from, "from", "", "leave alone instalments due before this date, YYYY-MM-DD")
	fs.StringVar(&o.Creditor.ID, "creditor-id", env("RECON_CREDITOR_ID", ""), "SEPA creditor identifier, e.g. FR72ZZZ123456 (env RECON_CREDITOR_ID)")
	fs.StringVar(&o.Creditor.Scheme, "scheme", "CORE", "SEPA direct-debit scheme: CORE or B2B")
	fs.IntVar(&o.WindowDays, "window-days", 5, "days after the requested collection date without settlement before an item is overdue")
	fs.StringVar(&out, "out", "", "write the pain.008.001.09 here (required); written before anything is published")
	fs.BoolVar(&dryRun, "dry-run", false, "write the file and print the items, publish nothing")
	accountFlags(fs, &o.Creditor.Account)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: recon collect --due-by DATE --out FILE [flags]\n\nReads the loans topic and the expected payments published so far, builds one SEPA\ndirect-debit message (pain.008.001.09) for every instalment due by DATE that has no\ncollection in flight, settled or returned (FRST on a mandate's first use, RCUR after;\na rejected one is presented again with a new end-to-end id), writes it to FILE, then\npublishes one expected item per instalment on recon.expected.v1. Running it again\ncollects nothing already collected; a failed publish is retried by running it again.\nSkipped loans are listed on stderr.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := s.parse(fs, args); code != 0 {
		return code
	}
	if dueBy == "" || out == "" {
		fs.Usage()
		return 2
	}
	now := time.Now()
	o.DueBy, o.From, o.Today, o.Now = recon.Date(dueBy), recon.Date(from), collect.Today(now), now
	return instruct(ctx, "collect", s, out, dryRun, func(loans []recon.Loan, known []recon.Expected) (collect.Batch, error) {
		return collect.Collections(loans, known, o)
	})
}

// disburseCmd builds the pain.001 paying loans out to their borrowers.
func disburseCmd(ctx context.Context, args []string) int {
	var s settings
	fs := newFlags("disburse", &s)
	var o collect.DisburseOptions
	var loanIDs listFlag
	var amount, date, out string
	var dryRun bool
	fs.Var(&loanIDs, "loan", "loan id to disburse (repeat for several; required)")
	fs.StringVar(&amount, "amount", "", "amount to transfer when it is not the loan's principal (one --loan only)")
	fs.BoolVar(&o.Instant, "instant", true, "SEPA Instant (SCT Inst): every euro-area PSP offering SEPA transfers must accept it since 9 Oct 2025; --instant=false for a borrower's bank outside that rule")
	fs.StringVar(&date, "date", "", "requested execution date, YYYY-MM-DD (default today)")
	fs.IntVar(&o.WindowDays, "window-days", 0, "days after the execution date without settlement before an item is overdue (default 1 instant, 3 otherwise)")
	fs.StringVar(&out, "out", "", "write the pain.001.001.10 here (required); written before anything is published")
	fs.BoolVar(&dryRun, "dry-run", false, "write the file and print the items, publish nothing")
	accountFlags(fs, &o.Debtor)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: recon disburse --loan ID [--loan ID...] --out FILE [flags]\n\nBuilds one credit transfer (pain.001.001.10) per loan to its borrower's IBAN, with the\nloan's disbursement_end_to_end_id when it has one (the matcher books the outgoing\ntransfer by it), writes FILE, then publishes the expected items. A loan already\ndisbursed or in flight is skipped.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := s.parse(fs, args); code != 0 {
		return code
	}
	if len(loanIDs) == 0 || out == "" {
		fs.Usage()
		return 2
	}
	if amount != "" {
		if len(loanIDs) != 1 {
			return fail("--amount needs exactly one --loan")
		}
		a, err := decimal.NewFromString(amount)
		if err != nil {
			return fail("--amount %q: %v", amount, err)
		}
		o.Amounts = map[string]decimal.Decimal{loanIDs[0]: a}
	}
	now := time.Now()
	o.Today, o.Now, o.RequestedDate = collect.Today(now), now, recon.Date(date)
	return instruct(ctx, "disburse", s, out, dryRun, func(loans []recon.Loan, known []recon.Expected) (collect.Batch, error) {
		want := map[string]bool{}
		for _, id := range loanIDs {
			want[id] = true
		}
		var picked []recon.Loan
		for _, l := range loans {
			if want[l.LoanID] {
				picked = append(picked, l)
				delete(want, l.LoanID)
			}
		}
		if len(want) > 0 {
			return collect.Batch{}, fmt.Errorf("unknown loan(s) %v: not on the loans topic", keys(want))
		}
		return collect.Disbursements(picked, known, o)
	})
}

// instruct reads loans and known items, builds a batch, writes its file,
// then publishes its items.
func instruct(ctx context.Context, command string, s settings, out string, dryRun bool, build func([]recon.Loan, []recon.Expected) (collect.Batch, error)) int {
	kc, err := s.cluster(command)
	if err != nil {
		return fail("%v", err)
	}
	cl, err := client(ctx, kc)
	if err != nil {
		return fail("%v", err)
	}
	defer cl.Close()
	loans, err := collect.Loans(ctx, kc)
	if err != nil {
		return fail("%v", err)
	}
	tr := collect.NewTracker()
	if _, err := collect.Known(ctx, kc, tr); err != nil {
		return fail("%v", err)
	}
	b, err := build(loans, tr.Items())
	if err != nil {
		return fail("%v", err)
	}
	for _, sk := range b.Skipped {
		fmt.Fprintf(os.Stderr, "skipped: loan %s %s: %s\n", sk.LoanID, sk.DueDate, sk.Reason)
	}
	if len(b.Items) == 0 {
		fmt.Fprintln(os.Stderr, "nothing to send: no file written")
		return 0
	}
	if err := writeAtomic(out, b.XML); err != nil {
		return fail("write %s: %v", out, err)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, it := range b.Items {
		enc.Encode(it)
	}
	if dryRun {
		fmt.Fprintf(os.Stderr, "%s: message %s, %d items (dry run: nothing published)\n", out, b.MessageID, len(b.Items))
		return 0
	}
	if err := collect.Publish(ctx, cl, kc, b.Items, "recon/collect", time.Now()); err != nil {
		return fail("publish expected items: %v (the file %s is written; running again rebuilds the same message)", err, out)
	}
	fmt.Fprintf(os.Stderr, "%s: message %s, %d items published on recon.expected.v1\n", out, b.MessageID, len(b.Items))
	return 0
}

// trackCmd runs the expected-payments tracker until interrupted.
func trackCmd(ctx context.Context, args []string) int {
	var s settings
	fs := newFlags("track", &s)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: recon track [flags]\n\nFollows the expected payments (recon.expected.v1): settles them by end-to-end id from\nbooked bank transactions, marks them rejected from pain.002/pacs.002 (group, payment-\ninformation or transaction level), returned from pacs.004 or camt returns, overdue\nafter their window, and publishes every change on recon.expected.v1.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := s.parse(fs, args); code != 0 {
		return code
	}
	kc, err := s.cluster("track")
	if err != nil {
		return fail("%v", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := collect.NewLoop(collect.LoopConfig{Kafka: kc, Log: log}).Run(ctx); err != nil {
		return fail("%v", err)
	}
	return 0
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// writeAtomic writes data to path through a temporary file and a rename,
// so a reader never sees half a payment file.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
