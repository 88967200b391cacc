package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/analytics"
	"github.com/reconhq/recon/schemas"
)

// TestIntegrationStatementProof: a camt.053 whose entries all post is
// proved ok against the ledger; the next day's statement, sound in itself
// and chaining on, closes 0.01 below what the ledger holds (a payment the
// bank never listed) and is reported as a break, in ClickHouse and as a
// statement_break alert delivered to ops.
func TestIntegrationStatementProof(t *testing.T) {
	brokers, chAddr := services(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	acct := iban("DE", "50010517"+pad(run, 10))
	vA, vX := iban("DE", "11111111"+pad(run, 10)), iban("DE", "99999999"+pad(run, 10))
	lA := "P-" + run
	db := "recon_proof_" + run

	rc := &receiver{secret: "whsec_cHJvb2Ytc2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NTY3", byID: map[string]int{}, bodies: map[string]string{}}
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
  - name: proof
    kind: statement_break
    account: %s
    endpoint: ops
`, srv.URL, rc.secret, acct), "ops\n", "ops-"+run+"\n"))
	p := startRecon(t, "run", "--brokers", brokers, "--clickhouse", chAddr, "--clickhouse-database", db,
		"--alerts-config", rules, "--data-dir", dir, "--instance", "e2e")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("recon log:\n%s", p.log.String())
		}
	})
	p.post("/v1/loans", fmt.Sprintf(`{"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"5000.00"}`, lA, vA))

	conn, err := analytics.Open(chAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
	// proofs are read from Kafka: ClickHouse (a fresh database) first
	// catches up with every topic's history on the shared broker
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeTopics(schemas.TopicReconciliation), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]recon.Break{}
	proof := func(stmt string) func() (bool, string) {
		return func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := cl.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				var b recon.Break
				if json.Unmarshal(r.Value, &b) == nil && b.AccountIBAN == acct {
					seen[b.ID] = b
				}
			})
			b, ok := seen[stmt+"/proof"]
			state := b.Status + " " + b.Difference.String()
			return ok && b.Status != recon.BreakIncomplete, state
		}
	}

	// a payment the bank will not list on day 2's statement: the ledger
	// holds 0.01 more than the bank at the end of day 2
	p.post("/v1/bank/transactions", fmt.Sprintf(`{"id":"extra-%[1]s","account_iban":%[2]q,"virtual_iban":%[3]q,"direction":"credit","amount":"0.01","currency":"EUR","booking_date":"2026-11-21","bank_reference":"X-%[1]s"}`, run, acct, vA))
	// day 1: opening 1000.00, a repayment and an unknown payment (suspense): both post
	post := func(name, body string) {
		resp, err := http.Post(p.base+"/v1/bank/files?name="+name, "application/xml", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %v %v", name, err, resp)
		}
		resp.Body.Close()
	}
	post("day1.xml", camtStatement(run, "1", acct, "2026-11-20", "1000.00", "1150.00", []camtEntry{
		{ref: "P1-" + run, amount: "100.00", vIBAN: vA}, {ref: "P2-" + run, amount: "50.00", vIBAN: vX}}))
	eventually(t, 5*time.Minute, "day 1 proved", proof("P-"+run+"-1/S1-"+run))
	if _, state := proof("P-" + run + "-1/S1-" + run)(); state != "ok 0" {
		t.Fatalf("day 1 proof: %s, want ok 0", state)
	}

	post("day2.xml", camtStatement(run, "2", acct, "2026-11-21", "1150.00", "1175.00", []camtEntry{
		{ref: "P3-" + run, amount: "25.00", vIBAN: vA}}))
	eventually(t, 3*time.Minute, "day 2 proved", proof("P-"+run+"-2/S2-"+run))
	if _, state := proof("P-" + run + "-2/S2-" + run)(); state != "break -0.01" {
		t.Fatalf("day 2 proof: %s, want break -0.01", state)
	}
	eventually(t, 5*time.Minute, "statement_break alert delivered", func() (bool, string) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, b := range rc.bodies {
			if strings.Contains(b, `"statement_break"`) && strings.Contains(b, `"firing"`) {
				return len(rc.bad) == 0, b
			}
		}
		return false, fmt.Sprintf("%v bad %v", rc.bodies, rc.bad)
	})
	eventually(t, 5*time.Minute, "statement_breaks view", func() (bool, string) {
		var ids []string
		rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT id, proof_status FROM %s.statement_breaks WHERE account_iban = ?", db), acct)
		if err != nil {
			return false, err.Error()
		}
		defer rows.Close()
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				return false, err.Error()
			}
			ids = append(ids, id+":"+st)
		}
		got := strings.Join(ids, ",")
		return got == "P-"+run+"-2/S2-"+run+":break", got
	})
}

// camtStatement is a camt.053 with opening and closing balances, for one
// day, whose entries are credits.
func camtStatement(run, seq, acct, day, opening, closing string, entries []camtEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>P-%[1]s-%[3]s</MsgId><CreDtTm>%[4]sT20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S%[3]s-%[1]s</Id><ElctrncSeqNb>%[3]s</ElctrncSeqNb><CreDtTm>%[4]sT20:00:00</CreDtTm>
<FrToDt><FrDtTm>%[4]sT00:00:00</FrDtTm><ToDtTm>%[4]sT23:59:59</ToDtTm></FrToDt>
<Acct><Id><IBAN>%[2]s</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">%[5]s</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>%[4]s</Dt></Dt></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">%[6]s</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>%[4]s</Dt></Dt></Bal>`, run, acct, seq, day, opening, closing)
	for _, e := range entries {
		fmt.Fprintf(&b, `<Ntry><Amt Ccy="EUR">%[1]s</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>%[4]s</Dt></BookgDt><ValDt><Dt>%[4]s</Dt></ValDt><AcctSvcrRef>%[2]s</AcctSvcrRef>
<NtryDtls><TxDtls><Refs><AcctSvcrRef>%[2]s</AcctSvcrRef></Refs><AmtDtls><TxAmt><Amt Ccy="EUR">%[1]s</Amt></TxAmt></AmtDtls>
<RltdPties><CdtrAcct><Id><IBAN>%[3]s</IBAN></Id></CdtrAcct></RltdPties></TxDtls></NtryDtls></Ntry>`, e.amount, e.ref, e.vIBAN, day)
	}
	b.WriteString(`</Stmt></BkToCstmrStmt></Document>`)
	return b.String()
}
