package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/alerts"
	"github.com/reconhq/recon/analytics"
)

// receiver is ops' webhook endpoint: it verifies every delivery's
// signature and counts deliveries per webhook-id.
type receiver struct {
	mu     sync.Mutex
	secret string
	byID   map[string]int
	bodies map[string]string
	bad    []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := alerts.Verify([]string{rc.secret}, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	id := r.Header.Get("webhook-id")
	rc.byID[id]++
	rc.bodies[id] = string(body)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) counts() (map[string]int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.byID {
		out[k] = v
	}
	return out, append([]string(nil), rc.bad...)
}

type loanView struct {
	Paid, Outstanding, Overpaid, Status string
}

// TestIntegrationPipeline: loans + a camt.053 + producer events in → the
// expected loan balances via the API, the expected rows in ClickHouse, and
// alerts received once each with valid signatures; then a restart and a
// second delivery of everything change nothing.
func TestIntegrationPipeline(t *testing.T) {
	brokers, chAddr := services(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	acct := iban("FR", "30001007"+pad(run, 15))
	vA, vB, vC, vX := iban("FR", "11111111"+pad(run, 15)), iban("FR", "22222222"+pad(run, 15)), iban("FR", "33333333"+pad(run, 15)), iban("FR", "99999999"+pad(run, 15))
	lA, lB, lC := "A-"+run, "B-"+run, "C-"+run
	db := "recon_e2e_" + run

	rc := &receiver{secret: "whsec_ZTJlLXNlY3JldC1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5", byID: map[string]int{}, bodies: map[string]string{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	dir := t.TempDir()
	rules := filepath.Join(dir, "alerts.yaml")
	// the endpoint is named after the run: the alerts state (on Kafka, under
	// --instance e2e) may hold deliveries of earlier runs, which then go to
	// no endpoint of this one
	writeFile(t, rules, strings.ReplaceAll(fmt.Sprintf(`
allow_loopback: true
delivery: {initial_backoff: 200ms, max_backoff: 1s}
endpoints:
  - name: ops
    url: %s/hooks
    secret: %s
rules:
  - name: big-credit
    kind: large_credit
    threshold: "2500.00"
    currency: EUR
    account: %s
    endpoint: ops
  - name: cash-above
    kind: balance_above
    account: bank:%s
    threshold: "5000.00"
    currency: EUR
    endpoint: ops
`, srv.URL, rc.secret, acct, acct), "ops\n", "ops-"+run+"\n"))

	args := []string{"run", "--brokers", brokers, "--clickhouse", chAddr, "--clickhouse-database", db,
		"--alerts-config", rules, "--data-dir", dir, "--instance", "e2e"}
	p := startRecon(t, args...)

	p.post("/v1/loans", fmt.Sprintf(`[
 {"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"2000.00","schedule":[
   {"due_date":"2026-10-05","principal":"1000.00","interest":"45.00","fees":"5.00"},
   {"due_date":"2026-11-05","principal":"1000.00","interest":"41.25","fees":"5.00"}]},
 {"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"2500.00","schedule":[
   {"due_date":"2026-11-10","principal":"2500.00","interest":"112.50","fees":"0.00"}]},
 {"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"5000.00"}]`, lA, vA, lB, vB, lC, vC))
	// the matcher reads the loans topic; a payment that outruns its loan
	// waits in suspense and is re-matched, so no wait is needed for correctness.
	file := camt053(run, acct, []camtEntry{
		{ref: "R1-" + run, amount: "1050.00", vIBAN: vA, e2e: "E2E-A-" + run},
		{ref: "R2-" + run, amount: "3000.00", vIBAN: vB},
		{ref: "R3-" + run, amount: "1320.00", vIBAN: vX},
	})
	resp, err := http.Post(p.base+"/v1/bank/files?name=e2e.xml", "application/xml", strings.NewReader(file))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST file: %v %v", err, resp)
	}
	resp.Body.Close()
	events := fmt.Sprintf(`[
 {"id":"wh-1-%[1]s","account_iban":%[2]q,"virtual_iban":%[3]q,"direction":"credit","amount":"800.00","currency":"EUR","booking_date":"2026-11-27","bank_reference":"R4-%[1]s"},
 {"id":"wh-2-%[1]s","account_iban":%[2]q,"virtual_iban":%[4]q,"direction":"credit","amount":"1050.00","currency":"EUR","booking_date":"2026-11-26","bank_reference":"R1-%[1]s"}]`, run, acct, vC, vA)
	p.post("/v1/bank/transactions", events)

	wantLoans := func(p *proc, want map[string]loanView) func() (bool, string) {
		return func() (bool, string) {
			var got []string
			ok := true
			for id, w := range want {
				var l loanView
				p.get("/v1/loans/"+id, &l)
				got = append(got, fmt.Sprintf("%s=%+v", id, l))
				if l != w {
					ok = false
				}
			}
			return ok, strings.Join(got, " ")
		}
	}
	before := map[string]loanView{
		lA: {Paid: "1050", Outstanding: "1046.25", Overpaid: "0", Status: "repaying"},
		lB: {Paid: "2612.5", Outstanding: "0", Overpaid: "387.5", Status: "repaid"},
		lC: {Paid: "800", Outstanding: "4200", Overpaid: "0", Status: "repaying"},
	}
	eventually(t, 60*time.Second, "loan balances after the first delivery", wantLoans(p, before))

	var susp struct {
		Items []struct {
			ID, Amount, Reason string
			Evidence           struct {
				AccountIBAN string `json:"account_iban"`
			}
		}
	}
	eventually(t, 30*time.Second, "one suspense item", func() (bool, string) {
		p.get("/v1/suspense?limit=10000&account="+url.QueryEscape(acct), &susp)
		n := 0
		for _, it := range susp.Items {
			if it.Evidence.AccountIBAN == acct {
				n++
			}
		}
		return n == 1, fmt.Sprintf("%+v", susp.Items)
	})
	var itemID string
	for _, it := range susp.Items {
		if it.Evidence.AccountIBAN == acct && it.Amount == "1320" {
			itemID = it.ID
		}
	}
	// a person assigns the unknown payment to loan C
	p.post("/v1/suspense/"+itemID+"/assign", fmt.Sprintf(`{"loan_id":%q,"note":"payer confirmed by phone","actor":"ops@lender"}`, lC))
	after := map[string]loanView{
		lA: before[lA], lB: before[lB],
		lC: {Paid: "2120", Outstanding: "2880", Overpaid: "0", Status: "repaying"},
	}
	eventually(t, 60*time.Second, "loan C after the suspense assignment", wantLoans(p, after))

	// the bank account: 1050 + 3000 + 1320 + 800, the duplicate sighting not counted
	var bal struct {
		Balances []struct{ Currency, Balance string }
	}
	p.get("/v1/accounts/bank:"+acct+"/balance", &bal)
	if len(bal.Balances) != 1 || bal.Balances[0].Balance != "6170" {
		t.Fatalf("bank balance = %+v, want 6170 EUR", bal)
	}

	// alerts: one large credit, one balance crossing, each delivered once and verified
	eventually(t, 60*time.Second, "two alerts delivered", func() (bool, string) {
		c, bad := rc.counts()
		return len(c) == 2 && len(bad) == 0, fmt.Sprintf("deliveries %v, bad signatures %v", c, bad)
	})

	// ClickHouse agrees with the ledger
	conn, err := analytics.Open(chAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
	eventually(t, 60*time.Second, "ClickHouse rows", func() (bool, string) {
		var txns, sightings uint64
		var loanCredits string
		row := conn.QueryRow(context.Background(), fmt.Sprintf(
			"SELECT uniqExact(id), count() FROM %s.bank_transactions WHERE account_iban = ?", db), acct)
		if err := row.Scan(&txns, &sightings); err != nil {
			return false, err.Error()
		}
		row = conn.QueryRow(context.Background(), fmt.Sprintf(
			"SELECT toString(sum(if(side = 'credit', amount, -amount))) FROM (SELECT * FROM %s.ledger_postings FINAL) WHERE account LIKE 'loan:%%-%s:%%' AND account NOT LIKE '%%:credit'", db, run))
		if err := row.Scan(&loanCredits); err != nil {
			return false, err.Error()
		}
		state := fmt.Sprintf("transactions %d, sightings %d, paid to loans %s", txns, sightings, loanCredits)
		return txns == 4 && sightings == 5 && trimZeros(loanCredits) == "5782.5", state
	})

	// restart, deliver everything again: nothing changes, no alert fires again
	p.stop(syscall.SIGTERM)
	p = startRecon(t, args...)
	// the same file again is recognised (200, duplicate) and publishes nothing
	resp, err = http.Post(p.base+"/v1/bank/files?name=e2e-again.xml", "application/xml", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(again), `"duplicate":true`) {
		t.Fatalf("POST file again: %s %s, want 200 with duplicate true", resp.Status, again)
	}
	p.post("/v1/bank/transactions", events)
	eventually(t, 60*time.Second, "duplicates recognised after restart", func() (bool, string) {
		var n int
		row := conn.QueryRow(context.Background(), fmt.Sprintf(
			"SELECT toInt64(count()) FROM %s.matches FINAL WHERE outcome = 'duplicate' AND transaction_id IN (SELECT id FROM %s.bank_transactions WHERE account_iban = ?)", db, db), acct)
		var c int64
		if err := row.Scan(&c); err != nil {
			return false, err.Error()
		}
		n = int(c)
		return n >= 3, fmt.Sprintf("%d duplicate decisions", n)
	})
	eventually(t, 10*time.Second, "loans unchanged", wantLoans(p, after))
	if c, bad := rc.counts(); len(c) != 2 || len(bad) != 0 {
		t.Fatalf("after restart: deliveries %v, bad %v; want the same 2 alerts once each", c, bad)
	}
	for id, n := range mustCounts(rc) {
		if n != 1 {
			t.Errorf("alert %s delivered %d times", id, n)
		}
	}
	out, code := runRecon(t, "ledger", "verify", "--brokers", brokers)
	if code != 0 {
		t.Fatalf("recon ledger verify: exit %d\n%s", code, out)
	}
}

func mustCounts(rc *receiver) map[string]int { c, _ := rc.counts(); return c }

type camtEntry struct{ ref, amount, vIBAN, e2e string }

func camt053(run, acct string, entries []camtEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>E2E-%[1]s</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S-%[1]s</Id><CreDtTm>2026-11-26T20:00:00</CreDtTm><Acct><Id><IBAN>%[2]s</IBAN></Id><Ccy>EUR</Ccy></Acct>`, run, acct)
	for _, e := range entries {
		e2e := ""
		if e.e2e != "" {
			e2e = "<EndToEndId>" + e.e2e + "</EndToEndId>"
		}
		fmt.Fprintf(&b, `<Ntry><Amt Ccy="EUR">%[1]s</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><ValDt><Dt>2026-11-26</Dt></ValDt><AcctSvcrRef>%[2]s</AcctSvcrRef>
<NtryDtls><TxDtls><Refs><AcctSvcrRef>%[2]s</AcctSvcrRef>%[4]s</Refs><AmtDtls><TxAmt><Amt Ccy="EUR">%[1]s</Amt></TxAmt></AmtDtls>
<RltdPties><CdtrAcct><Id><IBAN>%[3]s</IBAN></Id></CdtrAcct></RltdPties></TxDtls></NtryDtls></Ntry>`, e.amount, e.ref, e.vIBAN, e2e)
	}
	b.WriteString(`</Stmt></BkToCstmrStmt></Document>`)
	return b.String()
}

func pad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s[len(s)-n:]
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// iban is the IBAN of a test account: the BBAN given, check digits
// computed, so that ingest accepts it. A BBAN of the wrong length for its
// country is a mistake in the test: iban panics.
func iban(country, bban string) string {
	s := recon.IBANFor(country, bban)
	if err := recon.ValidIBAN(s); err != nil {
		panic(fmt.Sprintf("e2e: iban(%q, %q) = %s: %v", country, bban, s, err))
	}
	return s
}
