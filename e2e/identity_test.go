package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// camtEntryRefs is one entry of a camt.052/053/054 with the references a
// bank may or may not report.
type camtEntryRefs struct {
	amount, acctsvcr, e2e, txid, mandate, vIBAN string
}

// camtDoc writes a camt.052 report, camt.053 statement or camt.054
// notification (version .02) of one account.
func camtDoc(kind, msgID, acct string, entries []camtEntryRefs) string {
	tags := map[string][2]string{
		"052": {"BkToCstmrAcctRpt", "Rpt"},
		"053": {"BkToCstmrStmt", "Stmt"},
		"054": {"BkToCstmrDbtCdtNtfctn", "Ntfctn"},
	}[kind]
	root, block := tags[0], tags[1]
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.%[1]s.001.02"><%[2]s>
<GrpHdr><MsgId>%[3]s</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<%[4]s><Id>%[3]s-1</Id><CreDtTm>2026-11-26T20:00:00</CreDtTm><Acct><Id><IBAN>%[5]s</IBAN></Id><Ccy>EUR</Ccy></Acct>`, kind, root, msgID, block, acct)
	opt := func(tag, v string) string {
		if v == "" {
			return ""
		}
		return "<" + tag + ">" + v + "</" + tag + ">"
	}
	for _, e := range entries {
		fmt.Fprintf(&b, `<Ntry><Amt Ccy="EUR">%[1]s</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><ValDt><Dt>2026-11-26</Dt></ValDt>%[2]s
<NtryDtls><TxDtls><Refs>%[2]s%[3]s%[4]s%[5]s</Refs><AmtDtls><TxAmt><Amt Ccy="EUR">%[1]s</Amt></TxAmt></AmtDtls>
<RltdPties><CdtrAcct><Id><IBAN>%[6]s</IBAN></Id></CdtrAcct></RltdPties></TxDtls></NtryDtls></Ntry>`,
			e.amount, opt("AcctSvcrRef", e.acctsvcr), opt("EndToEndId", e.e2e), opt("TxId", e.txid), opt("MndtId", e.mandate), e.vIBAN)
	}
	fmt.Fprintf(&b, `</%s></%s></Document>`, block, root)
	return b.String()
}

// TestIntegrationIdentityAcrossChannels: one transfer reported by a bank
// webhook (end-to-end id only), a camt.054 (bank reference and end-to-end
// id), a camt.052 (transaction id and bank reference) and a camt.053 (bank
// reference only) is posted once; another payer reusing the end-to-end id
// with its own bank reference is other money; two monthly collections of
// one mandate without references are both posted.
func TestIntegrationIdentityAcrossChannels(t *testing.T) {
	brokers, _ := services(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	acct := iban("FR", "30001007"+pad(run, 15))
	vA, vB := iban("FR", "44444444"+pad(run, 15)), iban("FR", "55555555"+pad(run, 15))
	lA, lB := "ID-A-"+run, "ID-B-"+run
	t.Setenv("RECON_WEBHOOK_BEARER_TOKENS", "token-for-e2e-tests-"+run)
	p := startRecon(t, "run", "--brokers", brokers, "--data-dir", t.TempDir(), "--instance", "e2e-id-"+run)

	p.post("/v1/loans", fmt.Sprintf(`[
 {"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"3000.00"},
 {"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"3000.00","mandate_id":"MD-%s"}]`, lA, vA, lB, vB, run))

	e2eID, ref, txid := "E2E-"+run, "ACSV-"+run, "TXID-"+run
	hook := fmt.Sprintf(`{"id":"evt-%[1]s","type":"transaction.created","data":{"id":"tx-%[1]s","account":{"iban":%[2]q},
		"virtual_iban":%[3]q,"side":"credit","amount":"250.00","currency":"EUR","status":"booked","booking_date":"2026-11-26",
		"end_to_end_id":%[4]q}}`, run, acct, vA, e2eID)
	req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/bank/webhooks", strings.NewReader(hook))
	req.Header.Set("Authorization", "Bearer token-for-e2e-tests-"+run)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	files := []struct{ kind, name, body string }{
		{"054", "n.xml", camtDoc("054", "N-"+run, acct, []camtEntryRefs{
			{amount: "250.00", acctsvcr: ref, e2e: e2eID, vIBAN: vA},
			// another payer, same end-to-end id (an invoice number), its own bank reference
			{amount: "40.00", acctsvcr: "OTHER-" + run, e2e: e2eID, vIBAN: vA},
		})},
		{"052", "r.xml", camtDoc("052", "R-"+run, acct, []camtEntryRefs{{amount: "250.00", acctsvcr: ref, txid: txid, vIBAN: vA}})},
		{"053", "s.xml", camtDoc("053", "S-"+run, acct, []camtEntryRefs{
			{amount: "250.00", acctsvcr: ref, vIBAN: vA},
			{amount: "40.00", acctsvcr: "OTHER-" + run, vIBAN: vA},
		})},
	}
	for _, f := range files {
		resp, err := http.Post(p.base+"/v1/bank/files?name="+f.name, "application/xml", strings.NewReader(f.body))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST camt.%s: %v %v", f.kind, err, resp)
		}
		resp.Body.Close()
	}
	// two monthly collections of one mandate, reported without references
	p.post("/v1/bank/transactions", fmt.Sprintf(`[
 {"id":"dd-1-%[1]s","account_iban":%[2]q,"direction":"credit","amount":"120.00","currency":"EUR","booking_date":"2026-10-05","mandate_id":"MD-%[1]s","end_to_end_id":"NOTPROVIDED"},
 {"id":"dd-2-%[1]s","account_iban":%[2]q,"direction":"credit","amount":"120.00","currency":"EUR","booking_date":"2026-11-05","mandate_id":"MD-%[1]s","end_to_end_id":"NOTPROVIDED"}]`, run, acct))

	want := map[string]string{lA: "290", lB: "240"}
	eventually(t, 60*time.Second, "each movement posted once", paidIs(p, want))
	// and stays so: the bank balance counts each movement once
	time.Sleep(2 * time.Second) // a late double would show here (not a wait for a result)
	var bal struct {
		Balances []struct{ Currency, Balance string }
	}
	p.get("/v1/accounts/bank:"+acct+"/balance", &bal)
	if len(bal.Balances) != 1 || bal.Balances[0].Balance != "530" {
		t.Fatalf("bank balance %+v, want 530 EUR (250 + 40 + 2 x 120)", bal)
	}
}

// TestIntegrationBorrowerAcrossLoans: a borrower with three loans due a
// month apart pays one transfer of one and a half instalments to their
// virtual IBAN, reported by a camt.054: the oldest loan is paid, the next
// half, the last untouched, through recon run's public API.
func TestIntegrationBorrowerAcrossLoans(t *testing.T) {
	brokers, _ := services(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	acct := iban("FR", "30001007"+pad(run, 15))
	viban := iban("FR", "66666666"+pad(run, 15))
	bid := "B-" + run
	p := startRecon(t, "run", "--brokers", brokers, "--data-dir", t.TempDir(), "--instance", "e2e-b-"+run)

	p.post("/v1/borrowers", fmt.Sprintf(`{"borrower_id":%q,"name":"SARL Boulangerie","virtual_iban":%q}`, bid, viban))
	var loans []string
	for i, due := range []string{"2026-09-05", "2026-10-05", "2026-11-05"} {
		id := fmt.Sprintf("BL%d-%s", i+1, run)
		loans = append(loans, id)
		p.post("/v1/loans", fmt.Sprintf(`{"loan_id":%q,"borrower_id":%q,"currency":"EUR","principal":"180.00",
			"schedule":[{"due_date":%q,"principal":"180.00","interest":"18.00","fees":"2.00"}]}`, id, bid, due))
	}
	file := camtDoc("054", "NB-"+run, acct, []camtEntryRefs{{amount: "300.00", acctsvcr: "B-REF-" + run, e2e: "B-E2E-" + run, vIBAN: viban}})
	resp, err := http.Post(p.base+"/v1/bank/files?name=b.xml", "application/xml", strings.NewReader(file))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST camt.054: %v %v", err, resp)
	}
	resp.Body.Close()
	want := map[string]string{loans[0]: "200", loans[1]: "100", loans[2]: "0"}
	eventually(t, 60*time.Second, "one and a half instalments, oldest due first", paidIs(p, want))
	var b struct {
		Loans []struct {
			LoanID string `json:"loan_id"`
		}
		Totals []struct{ Currency, Paid, Outstanding, Credit string }
	}
	if code := p.get("/v1/borrowers/"+bid, &b); code != http.StatusOK || len(b.Loans) != 3 || len(b.Totals) != 1 ||
		b.Totals[0].Paid != "300" || b.Totals[0].Outstanding != "300" || b.Totals[0].Credit != "0" {
		t.Fatalf("GET /v1/borrowers/%s: %d %+v", bid, code, b)
	}
}

// paidIs checks what each loan shows as paid.
func paidIs(p *proc, want map[string]string) func() (bool, string) {
	return func() (bool, string) {
		ok, got := true, ""
		for id, paid := range want {
			var l loanView
			p.get("/v1/loans/"+id, &l)
			got += fmt.Sprintf("%s paid %s; ", id, l.Paid)
			ok = ok && l.Paid == paid
		}
		return ok, got
	}
}
