package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/analytics"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/collect"
)

// TestIntegrationPortfolioMonth runs one month of a small portfolio through
// `recon run`: five loans are disbursed (pain.001) and their month's
// instalments collected (pain.008); the bank answers with a pain.002 that
// rejects one collection, a pacs.004 that returns another, and a camt.053
// in which the disbursements and the other collections settle, the returned
// one is debited back (MD06) and two borrowers pay their next instalment by
// transfer to their virtual IBAN. Then every instalment is in the right
// state, every expected item has its status, the FEC for the month balances
// and its bank lines net to the statement, and every euro of the statement
// is on the bank account.
func TestIntegrationPortfolioMonth(t *testing.T) {
	brokers, chAddr := services(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	// A month of its own (far ahead, one per run modulo 50 years), so the
	// month's FEC holds this run's entries only.
	year := 2040 + int(time.Now().UnixNano()/1000%50)
	month := func(day string) recon.Date { return recon.Date(fmt.Sprintf("%d-03-%s", year, day)) }
	acct := iban("FR", "30004004"+pad(run, 15))
	db := "recon_e2e_pf_" + run
	dir := t.TempDir()
	t.Cleanup(func() {
		if conn, err := analytics.Open(chAddr); err == nil {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			conn.Close()
		}
	})
	began := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	p := startRecon(t, "run", "--brokers", brokers, "--clickhouse", chAddr, "--clickhouse-database", db,
		"--data-dir", dir, "--instance", "e2e")
	t.Cleanup(func() {
		if t.Failed() {
			p.stop(syscall.SIGTERM)
			out := p.log.String()
			t.Logf("recon's log (last 8000 bytes):\n%s", out[max(0, len(out)-8000):])
		}
	})

	// ---- the portfolio: five loans, an instalment in March and one in April each ----
	// Every loan id is chosen in loans-topic partition 0, so once the
	// matcher knows the probe loan posted after them it knows them all: a
	// disbursement (a debit) that outruns its loan would go through
	// suspense (parked, then re-matched when the loan arrives), so the
	// statement waits for that to keep the journal this test expects.
	const n = 5
	inPartition0 := func(prefix string) string {
		for k := 0; ; k++ {
			if id := fmt.Sprintf("%s-%d", prefix, k); bus.Partition([]byte(id), 3) == 0 {
				return id
			}
		}
	}
	loans := make([]recon.Loan, n)
	for i := range loans {
		id := inPartition0(fmt.Sprintf("PF%d-%s", i+1, run))
		loans[i] = recon.Loan{
			LoanID: id, VirtualIBAN: iban("FR", fmt.Sprintf("5555500%d", i+1)+pad(run, 15)), Currency: "EUR",
			Principal: dec("1000.00"),
			Schedule: []recon.Instalment{
				{DueDate: month(fmt.Sprintf("%02d", 5+i)), Principal: dec("500.00"), Interest: dec("10.00"), Fees: dec("0.00")},
				{DueDate: recon.Date(fmt.Sprintf("%d-04-%02d", year, 5+i)), Principal: dec("500.00"), Interest: dec("5.00"), Fees: dec("0.00")},
			},
			MandateID: "MD-" + id, MandateSignedOn: recon.Date(fmt.Sprintf("%d-01-15", year)),
			DisbursementEndToEndID: "D-" + id,
			Borrower:               &recon.Borrower{Name: fmt.Sprintf("Borrower %d", i+1), IBAN: iban("DE", fmt.Sprintf("%02d", i+1)+pad(run, 16))},
		}
	}
	body, err := json.Marshal(loans)
	if err != nil {
		t.Fatal(err)
	}
	p.post("/v1/loans", string(body))
	// The probe: a loan after them in the same partition and a payment to
	// it on another account; paid once the matcher knows the probe loan.
	probe, probeIBAN := inPartition0("PFP-"+run), iban("FR", "30004009"+pad(run, 15))
	p.post("/v1/loans", fmt.Sprintf(`{"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"1.00"}`, probe, iban("FR", "55555009"+pad(run, 15))))
	p.post("/v1/bank/transactions", fmt.Sprintf(`{"id":"pfp-%[1]s","account_iban":%[2]q,"virtual_iban":%[3]q,"direction":"credit","amount":"1.00","currency":"EUR","booking_date":"%[4]s","bank_reference":"PFP-%[1]s"}`,
		run, probeIBAN, iban("FR", "55555009"+pad(run, 15)), month("01")))
	step("recon healthy, portfolio posted")
	// Healthy means the loans are loaded; the matcher's stages may still be
	// restoring their state from the shared cluster, hence the long limit.
	eventually(t, 180*time.Second, "the matcher knows the portfolio", func() (bool, string) {
		var v loanView
		p.get("/v1/loans/"+probe, &v)
		return v.Paid == "1", fmt.Sprintf("probe loan %+v", v)
	})

	step("portfolio known to the matcher")

	// ---- what the lender instructs: disbursements and the month's collections ----
	now := time.Now()
	disb, err := collect.Disbursements(loans, nil, collect.DisburseOptions{
		Debtor: collect.Account{Name: "E2E Lender", IBAN: acct}, Instant: true,
		Today: month("01"), RequestedDate: month("02"), Now: now})
	if err != nil || len(disb.Items) != n || len(disb.XML) == 0 {
		t.Fatalf("disbursements: %v, %d items, skipped %+v", err, len(disb.Items), disb.Skipped)
	}
	coll, err := collect.Collections(loans, nil, collect.Options{
		Creditor: collect.Creditor{Account: collect.Account{Name: "E2E Lender", IBAN: acct}, ID: "FR72ZZZ123456"},
		From:     month("01"), DueBy: month("31"), Today: recon.Date(fmt.Sprintf("%d-02-25", year)), Now: now})
	if err != nil || len(coll.Items) != n || len(coll.XML) == 0 {
		t.Fatalf("collections: %v, %d items, skipped %+v", err, len(coll.Items), coll.Skipped)
	}
	byLoan := map[string]recon.Expected{}
	for _, it := range coll.Items {
		if it.SequenceType != "FRST" || it.Amount.StringFixed(2) != "510.00" {
			t.Fatalf("collection %+v: want FRST of 510.00", it)
		}
		byLoan[it.LoanID] = it
	}
	kc := bus.Config{Brokers: strings.Split(brokers, ","), Partitions: 3, ReplicationFactor: 1, ClientID: "e2e-portfolio"}
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = collect.Publish(ctx, cl, kc, append(append([]recon.Expected(nil), disb.Items...), coll.Items...), "e2e/portfolio", now)
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	// ---- the bank's side ----
	// loan 1, 2, 5: collected; loan 3: rejected (AM04); loan 4: collected, then returned (MD06);
	// loans 2 and 5 also pay their April instalment to their virtual IBAN.
	l := func(i int) recon.Loan { return loans[i-1] }
	rejected, returned := byLoan[l(3).LoanID], byLoan[l(4).LoanID]
	postFile(t, p, "pain002-"+run+".xml", fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<GrpHdr><MsgId>STS-%s</MsgId><CreDtTm>%s-03-04T08:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>%s</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>%s</OrgnlPmtInfId>
<TxInfAndSts><OrgnlEndToEndId>%s</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></TxInfAndSts>
</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>`, run, fmt.Sprint(year), coll.MessageID, rejected.PaymentInfoID, rejected.ID))
	postFile(t, p, "pacs004-"+run+".xml", fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.004.001.10"><PmtRtr>
<GrpHdr><MsgId>RTR-%[1]s</MsgId><CreDtTm>%[2]d-03-20T08:00:00</CreDtTm><NbOfTxs>1</NbOfTxs><SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr>
<TxInf><RtrId>RID-%[1]s</RtrId><OrgnlEndToEndId>%[3]s</OrgnlEndToEndId><RtrdIntrBkSttlmAmt Ccy="EUR">510.00</RtrdIntrBkSttlmAmt>
<IntrBkSttlmDt>%[2]d-03-20</IntrBkSttlmDt><RtrRsnInf><Rsn><Cd>MD06</Cd></Rsn></RtrRsnInf></TxInf>
</PmtRtr></Document>`, run, year, returned.ID))

	var entries []monthEntry
	for i, it := range disb.Items {
		entries = append(entries, monthEntry{ref: fmt.Sprintf("PFD%d-%s", i, run), amount: "1000.00", debit: true,
			date: month("02"), e2e: it.ID, counterparty: loanOf(loans, it.LoanID).Borrower.IBAN})
	}
	for i, it := range coll.Items {
		if it.ID == rejected.ID {
			continue // rejected before settlement: never on the statement
		}
		entries = append(entries, monthEntry{ref: fmt.Sprintf("PFC%d-%s", i, run), amount: "510.00", date: it.RequestedDate,
			e2e: it.ID, mandate: it.MandateID, counterparty: loanOf(loans, it.LoanID).Borrower.IBAN})
	}
	entries = append(entries, monthEntry{ref: "PFR-" + run, amount: "510.00", debit: true, date: month("20"),
		e2e: returned.ID, mandate: returned.MandateID, returnReason: "MD06", counterparty: l(4).Borrower.IBAN})
	for _, i := range []int{2, 5} {
		entries = append(entries, monthEntry{ref: fmt.Sprintf("PFT%d-%s", i, run), amount: "505.00", date: month("25"),
			counterparty: l(i).Borrower.IBAN, vIBAN: l(i).VirtualIBAN})
	}
	net := decimal.Zero
	for _, e := range entries {
		if e.debit {
			net = net.Sub(dec(e.amount))
		} else {
			net = net.Add(dec(e.amount))
		}
	}
	if net.StringFixed(2) != "-2460.00" {
		t.Fatalf("statement net %s: the test's own arithmetic is off", net)
	}
	postFile(t, p, "camt053-"+run+".xml", monthStatement(run, acct, month("01"), month("31"), entries))

	step("instructions published, bank files posted")

	// ---- every instalment in the right state ----
	want := map[string]loanView{
		l(1).LoanID: {Paid: "510", Outstanding: "505", Overpaid: "0", Status: "repaying"},
		l(2).LoanID: {Paid: "1015", Outstanding: "0", Overpaid: "0", Status: "repaid"},
		l(3).LoanID: {Paid: "0", Outstanding: "1015", Overpaid: "0", Status: "open"},
		l(4).LoanID: {Paid: "0", Outstanding: "1015", Overpaid: "0", Status: "open"},
		l(5).LoanID: {Paid: "1015", Outstanding: "0", Overpaid: "0", Status: "repaid"},
	}
	eventually(t, 90*time.Second, "loan balances after the month", func() (bool, string) {
		ok := true
		var got []string
		for id, w := range want {
			var v loanView
			p.get("/v1/loans/"+id, &v)
			got = append(got, fmt.Sprintf("%s=%+v", id, v))
			ok = ok && v == w
		}
		return ok, strings.Join(got, " ")
	})

	step("loans in their state")

	// ---- every expected item has its status ----
	wantStatus := map[string]string{}
	for _, it := range disb.Items {
		wantStatus[it.ID] = "settled/"
	}
	for _, it := range coll.Items {
		wantStatus[it.ID] = "settled/"
	}
	wantStatus[rejected.ID], wantStatus[returned.ID] = "rejected/AM04", "returned/MD06"
	eventually(t, 120*time.Second, "expected items' statuses on recon.expected.v1", func() (bool, string) {
		tr := collect.NewTracker()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := collect.Known(ctx, kc, tr); err != nil {
			return false, err.Error()
		}
		ok := true
		var got []string
		for id, w := range wantStatus {
			it, _ := tr.Get(id)
			s := string(it.Status) + "/" + it.Reason
			got = append(got, id+"="+s)
			ok = ok && s == w
		}
		return ok, strings.Join(got, " ")
	})

	step("expected items in their status")

	// ---- every euro of the statement is on the bank account, nothing in suspense ----
	eventually(t, 30*time.Second, "bank balance = the statement's movement", func() (bool, string) {
		var bal struct {
			Balances []struct{ Currency, Balance string }
		}
		p.get("/v1/accounts/bank:"+acct+"/balance", &bal)
		return len(bal.Balances) == 1 && bal.Balances[0].Currency == "EUR" && dec(bal.Balances[0].Balance).Equal(net),
			fmt.Sprintf("%+v, want %s EUR", bal.Balances, net)
	})
	var susp struct {
		Items []struct {
			ID, Amount, Reason string
			Evidence           struct {
				AccountIBAN string `json:"account_iban"`
			}
		}
	}
	p.get("/v1/suspense?limit=10000&account="+url.QueryEscape(acct), &susp)
	for _, it := range susp.Items {
		if it.Evidence.AccountIBAN == acct {
			t.Errorf("suspense item %s of %s: %s", it.ID, it.Amount, it.Reason)
		}
	}

	step("bank account = statement")

	// ---- the month's FEC balances and its bank lines net to the statement ----
	from, to := string(month("01")), string(month("31"))
	eventually(t, 120*time.Second, "the month's FEC", func() (bool, string) {
		resp, err := http.Get(p.base + "/v1/exports/fec?from=" + from + "&to=" + to)
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, resp.Status + ": " + string(b)
		}
		debit, credit, bank := decimal.Zero, decimal.Zero, decimal.Zero
		lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\r\n")
		for i, line := range lines[1:] {
			f := strings.Split(line, "\t")
			if len(f) != 18 {
				return false, fmt.Sprintf("line %d has %d fields: %q", i+2, len(f), line)
			}
			d, c := fecDec(f[11]), fecDec(f[12])
			debit, credit = debit.Add(d), credit.Add(c)
			if f[4] == "512000" && f[6] == acct {
				bank = bank.Add(d).Sub(c)
			}
		}
		state := fmt.Sprintf("%d lines, debit %s, credit %s, bank %s (want %s)", len(lines)-1, debit, credit, bank, net)
		return debit.Equal(credit) && bank.Equal(net), state
	})

	step("FEC balanced")

	// ---- the trial balance ties ----
	var tb struct {
		Rows []struct {
			Account, Currency string
			Balance           decimal.Decimal
		}
		Totals []struct {
			Currency      string
			Debit, Credit decimal.Decimal
		}
	}
	if code := p.get("/v1/exports/trial-balance?at="+to, &tb); code != http.StatusOK || len(tb.Totals) == 0 {
		t.Fatalf("trial balance: %d %+v", code, tb)
	}
	for _, tot := range tb.Totals {
		if !tot.Debit.Equal(tot.Credit) {
			t.Errorf("trial balance %s: debit %s != credit %s", tot.Currency, tot.Debit, tot.Credit)
		}
	}
	found := false
	for _, r := range tb.Rows {
		if r.Account == "bank:"+acct {
			found = true
			if !r.Balance.Equal(net) || r.Currency != "EUR" {
				t.Errorf("trial balance bank:%s = %s %s, want %s EUR", acct, r.Balance, r.Currency, net)
			}
		}
	}
	if !found {
		t.Errorf("trial balance has no row for bank:%s", acct)
	}
	step("trial balance tied")
}

// monthEntry is one booked entry of the month's statement.
type monthEntry struct {
	ref, amount  string
	debit        bool
	date         recon.Date
	e2e, mandate string
	returnReason string
	counterparty string // the borrower's own account
	vIBAN        string // the lender's virtual IBAN the borrower paid to
}

// monthStatement is a camt.053.001.02 for acct over [from, to].
func monthStatement(run, acct string, from, to recon.Date, entries []monthEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>PF-%[1]s</MsgId><CreDtTm>%[3]sT20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>PFS-%[1]s</Id><CreDtTm>%[3]sT20:00:00</CreDtTm><FrToDt><FrDtTm>%[4]sT00:00:00</FrDtTm><ToDtTm>%[3]sT23:59:59</ToDtTm></FrToDt>
<Acct><Id><IBAN>%[2]s</IBAN></Id><Ccy>EUR</Ccy></Acct>`, run, acct, to, from)
	for _, e := range entries {
		ind, refs, parties := "CRDT", "<AcctSvcrRef>"+e.ref+"</AcctSvcrRef>", ""
		if e.debit {
			ind = "DBIT"
		}
		if e.e2e != "" {
			refs += "<EndToEndId>" + e.e2e + "</EndToEndId>"
		}
		if e.mandate != "" {
			refs += "<MndtId>" + e.mandate + "</MndtId>"
		}
		switch {
		case e.debit && e.returnReason == "": // a transfer out: the borrower is the creditor
			parties = "<CdtrAcct><Id><IBAN>" + e.counterparty + "</IBAN></Id></CdtrAcct>"
		default: // money in from the borrower, or a returned direct debit naming its debtor
			parties = "<DbtrAcct><Id><IBAN>" + e.counterparty + "</IBAN></Id></DbtrAcct>"
			if e.vIBAN != "" {
				parties += "<CdtrAcct><Id><IBAN>" + e.vIBAN + "</IBAN></Id></CdtrAcct>"
			}
		}
		rtr := ""
		if e.returnReason != "" {
			rtr = "<RtrInf><Rsn><Cd>" + e.returnReason + "</Cd></Rsn></RtrInf>"
		}
		fmt.Fprintf(&b, `<Ntry><Amt Ccy="EUR">%[1]s</Amt><CdtDbtInd>%[2]s</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>%[3]s</Dt></BookgDt><ValDt><Dt>%[3]s</Dt></ValDt><AcctSvcrRef>%[4]s</AcctSvcrRef>
<NtryDtls><TxDtls><Refs>%[5]s</Refs><AmtDtls><TxAmt><Amt Ccy="EUR">%[1]s</Amt></TxAmt></AmtDtls><RltdPties>%[6]s</RltdPties>%[7]s</TxDtls></NtryDtls></Ntry>
`, e.amount, ind, e.date, e.ref, refs, parties, rtr)
	}
	b.WriteString(`</Stmt></BkToCstmrStmt></Document>`)
	return b.String()
}

func postFile(t *testing.T, p *proc, name, body string) {
	t.Helper()
	resp, err := http.Post(p.base+"/v1/bank/files?name="+name, "application/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST file %s: %s: %s", name, resp.Status, b)
	}
}

func loanOf(loans []recon.Loan, id string) recon.Loan {
	for _, l := range loans {
		if l.LoanID == id {
			return l
		}
	}
	return recon.Loan{}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// fecDec reads an FEC amount ("1234,50"; empty is zero).
func fecDec(s string) decimal.Decimal {
	if s == "" {
		return decimal.Zero
	}
	return decimal.RequireFromString(strings.Replace(s, ",", ".", 1))
}
