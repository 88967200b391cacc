package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/reconhq/recon/api"
)

//go:embed demo/*
var demoFS embed.FS

// runDemo feeds the shipped demo through the HTTP API like any producer
// would, waits until the ledger has it, and prints a summary to w.
func runDemo(ctx context.Context, w io.Writer, base, brokers string, view *api.View) error {
	if err := waitHealthy(ctx, base); err != nil {
		return err
	}
	steps := []struct{ path, file, ctype string }{
		{"/v1/loans", "demo/loans.json", "application/json"},
		{"/v1/bank/files?name=statement.xml", "demo/statement.xml", "application/xml"},
		{"/v1/bank/transactions", "demo/events.json", "application/json"},
	}
	for _, st := range steps {
		body, _ := demoFS.ReadFile(st.file)
		resp, err := http.Post(base+st.path, st.ctype, bytes.NewReader(body))
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("demo: POST %s: %s: %s", st.path, resp.Status, msg)
		}
		if st.path == "/v1/loans" {
			time.Sleep(300 * time.Millisecond) // let the matcher's loans table see them first, as in real life
		}
	}
	// 4 bank movements post 5 entries (the webhook duplicate posts nothing).
	deadline := time.Now().Add(30 * time.Second)
	for view.Entries() < 5 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	printSummary(w, base, brokers)
	return nil
}

func waitHealthy(ctx context.Context, base string) error {
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func printSummary(w io.Writer, base, brokers string) {
	fmt.Fprintln(w, "\n=== recon demo: 3 loans, a camt.053 with 4 entries, 2 webhook-style events (one a duplicate) ===")
	for _, id := range []string{"L-1001", "L-1002", "L-1003"} {
		var l api.LoanSummary
		if err := getJSON(base+"/v1/loans/"+id, &l); err == nil {
			fmt.Fprintf(w, "loan %-7s owed %10s  paid %9s  outstanding %10s  overpaid %7s  %s\n", l.LoanID, l.Owed.StringFixed(2), l.Paid.StringFixed(2), l.Outstanding.StringFixed(2), l.Overpaid.StringFixed(2), l.Status)
		}
	}
	var susp api.SuspensePage
	if err := getJSON(base+"/v1/suspense", &susp); err == nil {
		fmt.Fprintf(w, "suspense: %d item(s)\n", susp.Total)
		for _, it := range susp.Items {
			fmt.Fprintf(w, "  %s %s %s: %s\n", it.ID, it.Amount.StringFixed(2), it.Currency, it.Reason)
		}
	}
	var bal struct {
		Balances []struct{ Currency, Balance string }
	}
	if err := getJSON(base+"/v1/accounts/bank:FR4630001007940000000000106/balance", &bal); err == nil {
		for _, b := range bal.Balances {
			fmt.Fprintf(w, "bank account FR46 3000 1007 9400 0000 0000 106: %s %s booked by recon\n", b.Balance, b.Currency)
		}
	}
	fmt.Fprintf(w, `
Next:
  curl %[1]s/v1/loans/L-1001
  curl %[1]s/v1/suspense
  curl -XPOST %[1]s/v1/suspense/<id>/assign -d '{"loan_id":"L-1002","note":"payer confirmed by phone"}'
  curl %[1]s/metrics | grep recon_
  kcat -b %[2]s -t recon.ledger-entries.v1 -C -e     (the journal)
Analytics: set RECON_CLICKHOUSE_ADDR to a ClickHouse to get the recon.* tables; without it the
sink is off and nothing is lost: it catches up from Kafka when started. Ctrl-C stops recon.
`, base, brokers)
}
