package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/projection"
)

const bankIBAN = "FR7630004000031234567890143"

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func post(acct string, side recon.Side, amt string) recon.Posting {
	return recon.Posting{Account: acct, Side: side, Amount: dec(amt), Currency: "EUR"}
}

func entry(id, kind, loan, date string, ps ...recon.Posting) recon.Entry {
	at, _ := time.Parse(time.DateOnly, date)
	return recon.Entry{ID: id, Kind: kind, LoanID: loan, EffectiveDate: recon.Date(date), BookedAt: at.Add(26 * time.Hour), Postings: ps}
}

func journal() []recon.Entry {
	bank := ledger.Bank(bankIBAN)
	const D, C = recon.DebitSide, recon.CreditSide
	return []recon.Entry{
		entry("e1", "repayment", "L1", "2026-11-30", post(bank, D, "100.00"), post(ledger.Principal("L1"), C, "80.00"),
			post(ledger.Interest("L1"), C, "19.50"), post(ledger.Fees("L1"), C, "0.50")),
		entry("e2", "bank_fees", "", "2026-11-30", post(ledger.BankFees, D, "1.20"), post(bank, C, "1.20")),
		entry("e3", "suspense", "", "2026-12-01", post(bank, D, "55.55"), post(ledger.Suspense, C, "55.55")),
		entry("e4", "release", "", "2026-12-02", post(ledger.Suspense, D, "55.55"), post(ledger.Transit, C, "55.55")),
		entry("e5", "rematch_in", "L:2", "2026-12-02", post(ledger.Transit, D, "55.55"), post(ledger.Principal("L:2"), C, "50.00"),
			post(ledger.Credit("L:2"), C, "5.55")),
		entry("e6", "refund", "L:2", "2026-12-31", post(ledger.Credit("L:2"), D, "5.55"), post(bank, C, "5.55")),
		entry("e7", "repayment", "L3", "2027-01-02", post(bank, D, "0.01"), post(ledger.Interest("L3"), C, "0.01")),
		// A redelivery of e1: counted once.
		entry("e1", "repayment", "L1", "2026-11-30", post(bank, D, "100.00"), post(ledger.Principal("L1"), C, "80.00"),
			post(ledger.Interest("L1"), C, "19.50"), post(ledger.Fees("L1"), C, "0.50")),
	}
}

func readFEC(t *testing.T, b []byte) [][]string {
	t.Helper()
	text := string(b)
	if !strings.HasSuffix(text, "\r\n") {
		t.Fatal("FEC does not end with a line break")
	}
	var rows [][]string
	for i, line := range strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n") {
		f := strings.Split(line, "\t")
		if len(f) != 18 {
			t.Fatalf("line %d has %d columns: %q", i+1, len(f), line)
		}
		rows = append(rows, f)
	}
	if strings.Join(rows[0], ",") != strings.Join(FECColumns, ",") {
		t.Fatalf("header %v", rows[0])
	}
	return rows[1:]
}

func fecDecimal(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	if !strings.Contains(s, ",") || strings.Contains(s, ".") {
		t.Fatalf("amount %q: want a comma decimal separator", s)
	}
	return dec(strings.Replace(s, ",", ".", 1))
}

// The FEC has one line per posting, 18 columns, and its debits and credits
// tie to the ledger to the cent: per account to the projection's balances, in total to
// the postings.
func TestFECTiesToTheLedger(t *testing.T) {
	entries := journal()
	lines, err := Lines(entries, Period{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteFEC(&buf, lines); err != nil {
		t.Fatal(err)
	}
	rows := readFEC(t, buf.Bytes())
	proj := projection.New(projection.Config{})
	postings := 0
	for i, e := range entries[:7] {
		if err := proj.Apply(0, int64(i), e); err != nil {
			t.Fatal(err)
		}
		postings += len(e.Postings)
	}
	book := proj.Book()
	if len(rows) != postings {
		t.Fatalf("%d lines for %d postings", len(rows), postings)
	}
	type sums struct{ d, c decimal.Decimal }
	byAccount := map[string]*sums{}
	var total sums
	for i, r := range rows {
		acct := lines[i].Account
		if byAccount[acct] == nil {
			byAccount[acct] = &sums{}
		}
		d, c := fecDecimal(t, r[11]), fecDecimal(t, r[12])
		byAccount[acct].d, byAccount[acct].c = byAccount[acct].d.Add(d), byAccount[acct].c.Add(c)
		total.d, total.c = total.d.Add(d), total.c.Add(c)
	}
	if !total.d.Equal(total.c) || total.d.StringFixed(2) != "273.41" {
		t.Errorf("FEC debits %s credits %s, want 273.41 both", total.d, total.c)
	}
	for _, acct := range book.Accounts() {
		bal := book.Balances(acct, time.Time{})[0]
		s := byAccount[acct]
		if s == nil || !s.d.Equal(bal.Debits) || !s.c.Equal(bal.Credits) {
			t.Errorf("%s: FEC %+v, ledger debits %s credits %s", acct, s, bal.Debits, bal.Credits)
		}
	}
	tb, err := Trial(entries, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tb.Rows {
		bal := book.Balances(r.Account, time.Time{})[0]
		if !r.Debit.Equal(bal.Debits) || !r.Credit.Equal(bal.Credits) || !r.Balance.Equal(bal.Balance) {
			t.Errorf("trial %s: %+v, ledger %+v", r.Account, r, bal)
		}
	}
	if len(tb.Totals) != 1 || !tb.Totals[0].Debit.Equal(total.d) || !tb.Totals[0].Credit.Equal(total.c) {
		t.Errorf("trial totals %+v", tb.Totals)
	}
}

func TestFECLines(t *testing.T) {
	lines, err := Lines(journal(), Period{From: "2026-12-01", To: "2026-12-31"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteFEC(&buf, lines); err != nil {
		t.Fatal(err)
	}
	rows := readFEC(t, buf.Bytes())
	var ids []string
	for _, r := range rows {
		if r[3] < "20261201" || r[3] > "20261231" {
			t.Errorf("date %s outside the period", r[3])
		}
		if len(ids) == 0 || ids[len(ids)-1] != r[8] {
			ids = append(ids, r[8])
		}
	}
	if strings.Join(ids, ",") != "e3,e4,e5,e6" {
		t.Errorf("entries %v", ids)
	}
	want := [][]string{
		{"BQ", "Banque", "BQ000001", "20261201", "512000", "Banques", bankIBAN, "Banque " + bankIBAN, "e3", "20261201", "suspense", "55,55", "0,00", "", "", "20261202", "", ""},
		{"BQ", "Banque", "BQ000001", "20261201", "471000", "Compte d'attente", "", "", "e3", "20261201", "suspense", "0,00", "55,55", "", "", "20261202", "", ""},
		{"OD", "Opérations diverses", "OD000001", "20261202", "471000", "Compte d'attente", "", "", "e4", "20261202", "release", "55,55", "0,00", "", "", "20261203", "", ""},
		{"OD", "Opérations diverses", "OD000001", "20261202", "581000", "Virements internes - réaffectations", "", "", "e4", "20261202", "release", "0,00", "55,55", "", "", "20261203", "", ""},
		{"OD", "Opérations diverses", "OD000002", "20261202", "581000", "Virements internes - réaffectations", "", "", "e5", "20261202", "rematch_in loan L:2", "55,55", "0,00", "", "", "20261203", "", ""},
		{"OD", "Opérations diverses", "OD000002", "20261202", "274800", "Autres prêts", "L:2", "Prêt L:2", "e5", "20261202", "rematch_in loan L:2", "0,00", "50,00", "", "", "20261203", "", ""},
		{"OD", "Opérations diverses", "OD000002", "20261202", "419000", "Clients créditeurs", "L:2", "Prêt L:2", "e5", "20261202", "rematch_in loan L:2", "0,00", "5,55", "", "", "20261203", "", ""},
		{"BQ", "Banque", "BQ000002", "20261231", "419000", "Clients créditeurs", "L:2", "Prêt L:2", "e6", "20261231", "refund loan L:2", "5,55", "0,00", "", "", "20270101", "", ""},
		{"BQ", "Banque", "BQ000002", "20261231", "512000", "Banques", bankIBAN, "Banque " + bankIBAN, "e6", "20261231", "refund loan L:2", "0,00", "5,55", "", "", "20270101", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
}

func TestFECRefuses(t *testing.T) {
	usd := entry("u1", "repayment", "L9", "2026-12-01", recon.Posting{Account: ledger.Bank(bankIBAN), Side: recon.DebitSide, Amount: dec("1"), Currency: "USD"},
		recon.Posting{Account: ledger.Principal("L9"), Side: recon.CreditSide, Amount: dec("1"), Currency: "USD"})
	fine := entry("f1", "repayment", "L9", "2026-12-01", post(ledger.Bank(bankIBAN), recon.DebitSide, "1.001"), post(ledger.Principal("L9"), recon.CreditSide, "1.001"))
	unbalanced := entry("x1", "repayment", "L9", "2026-12-01", post(ledger.Bank(bankIBAN), recon.DebitSide, "1"), post(ledger.Principal("L9"), recon.CreditSide, "2"))
	for _, tc := range []struct {
		e    recon.Entry
		want string
	}{{usd, "currency USD"}, {fine, "more than two decimals"}, {unbalanced, "differ"}} {
		lines, err := Lines([]recon.Entry{tc.e}, Period{})
		if err == nil {
			err = WriteFEC(&bytes.Buffer{}, lines)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.e.ID, err, tc.want)
		}
	}
	if _, err := Lines(nil, Period{From: "2026-12-31", To: "2026-01-01"}); err == nil {
		t.Error("a backwards period is accepted")
	}
}

func TestTrialBalanceAt(t *testing.T) {
	entries := append(journal(), entry("u1", "repayment", "L9", "2026-12-01",
		recon.Posting{Account: ledger.Bank(bankIBAN), Side: recon.DebitSide, Amount: dec("7.5"), Currency: "USD"},
		recon.Posting{Account: ledger.Principal("L9"), Side: recon.CreditSide, Amount: dec("7.5"), Currency: "USD"}))
	tb, err := Trial(entries, "2026-11-30")
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Totals) != 1 || tb.Totals[0].Debit.StringFixed(2) != "101.20" {
		t.Fatalf("totals at 2026-11-30: %+v", tb.Totals)
	}
	tb, _ = Trial(entries, "")
	if len(tb.Totals) != 2 || tb.Totals[1].Currency != "USD" || tb.Totals[1].Debit.String() != "7.5" {
		t.Fatalf("totals %+v", tb.Totals)
	}
	var buf bytes.Buffer
	if err := tb.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || recs[len(recs)-1][0] != "TOTAL" || recs[len(recs)-1][7] != "0.00" {
		t.Fatalf("csv %v %v", recs, err)
	}
}

func TestMap(t *testing.T) {
	for acct, want := range map[string]string{
		"bank:FR76X": "512000/FR76X", "loan:A:B:principal": "274800/A:B", "loan:L1:interest": "762400/L1", "loan:L1:fees": "708800/L1",
		"loan:L1:credit": "419000/L1", "suspense": "471000/", "transit:rematch": "581000/", "transit:own-accounts": "580000/",
		"expense:bank-fees": "627000/", "something:new": "471900/something:new", "loan:L1:other": "471900/loan:L1:other",
	} {
		c := Map(acct)
		if got := c.Num + "/" + c.AuxNum; got != want {
			t.Errorf("%s: %s, want %s", acct, got, want)
		}
	}
}

func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	Handler{Load: func(context.Context) ([]recon.Entry, error) { return journal(), nil }}.Register(mux)
	for _, tc := range []struct {
		url, ctype, want string
		code             int
	}{
		{"/v1/exports/fec?from=2026-12-01&to=2026-12-31", "text/tab-separated-values; charset=utf-8", "JournalCode\tJournalLib", 200},
		{"/v1/exports/gl.csv?from=2026-11-01&to=2026-11-30", "text/csv; charset=utf-8", "2026-11-30,BQ,BQ000001,e1,repayment,L1,bank:" + bankIBAN, 200},
		{"/v1/exports/trial-balance?at=2026-11-30", "application/json", `"totals":[{"currency":"EUR","debit":"101.2","credit":"101.2"}]`, 200},
		{"/v1/exports/trial-balance?at=2026-11-30&format=csv", "text/csv; charset=utf-8", "TOTAL,,,,EUR,101.20,101.20,0.00", 200},
		{"/v1/exports/fec?from=30/11/2026", "", "not a date", 400},
		{"/v1/exports/trial-balance?at=x", "", "not a date", 400},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tc.url, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) || (tc.ctype != "" && rec.Header().Get("Content-Type") != tc.ctype) {
			t.Errorf("%s: %d %s\n%s", tc.url, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
	}
	var tb TrialBalance
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/exports/trial-balance", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &tb); err != nil || len(tb.Rows) == 0 {
		t.Errorf("trial balance JSON: %v", err)
	}
}
