package schemas_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/ingest"
	"github.com/reconhq/recon/ingest/iso20022"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/proofs"
	"github.com/reconhq/recon/schemas"
)

const (
	lenderIBAN  = "FR7630006000011234567890189"
	virtualIBAN = "FR7630001007941234567890185"
)

var testNow = time.Date(2026, 3, 2, 10, 30, 0, 123456789, time.UTC)

// What ingest writes to Kafka validates against the schema of its topic:
// producer transactions, loans, borrowers, an amendment's audit record,
// every ISO 20022 file of ingest's testdata (transactions, statements,
// returns, status reports, and the dead letters of what it refuses), and
// a dead letter. Each record's ce_type is one its topic's schema names.
func TestWhatIngestWritesValidates(t *testing.T) {
	kc, cl := bustest.Cluster(t, 3)
	in := ingest.New(cl, kc, ingest.NewMetrics(nil))
	defer in.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	loan := recon.Loan{LoanID: "L-1", VirtualIBAN: virtualIBAN, Currency: "EUR", Principal: dec("1000"),
		Schedule: []recon.Instalment{
			{DueDate: "2026-04-01", Principal: dec("250.00"), Interest: dec("12.50"), Fees: dec("0")},
			{DueDate: "2026-05-01", Principal: dec("750.00"), Interest: dec("3.75"), Fees: dec("1.5")},
		},
		MandateID: "MDT-1", MandateSignedOn: "2026-01-15", DisbursementEndToEndID: "DISB-L-1",
		Borrower: &recon.Borrower{Name: "Jeanne Martin", IBAN: "DE89370400440532013000"}}
	ofBorrower := recon.Loan{LoanID: "L-2", BorrowerID: "B-1", Currency: "EUR", Principal: dec("300")}
	if err := in.Borrowers(ctx, []recon.Borrower{{ID: "B-1", Name: "Paul", VirtualIBAN: "FR72 3000 1007 9400 0000 0000 123", IBAN: "de89370400440532013000"}}); err != nil {
		t.Fatal(err)
	}
	if err := in.Loans(ctx, []recon.Loan{loan, ofBorrower}); err != nil {
		t.Fatal(err)
	}
	amended := loan
	amended.Principal = dec("1200")
	if err := in.Amend(ctx, ingest.Amendment{Loan: amended, Reason: "top-up agreed by phone", Actor: "ops@lender", EffectiveDate: "2026-03-01"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Transactions(ctx, "api", []recon.BankTransaction{
		{ID: "evt-1", AccountIBAN: lenderIBAN, VirtualIBAN: virtualIBAN, Direction: recon.Credit, Amount: dec("262.50"), Currency: "EUR",
			BookingDate: "2026-04-01", EndToEndID: "E2E-1", RemittanceInfo: "L-1 April", CounterpartyIBAN: "DE89370400440532013000"},
		{ID: "evt-2", AccountIBAN: lenderIBAN, Direction: recon.Debit, Amount: dec("0.01"), Currency: "EUR", Status: recon.Pending, MandateID: "MDT-1"},
	}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("..", "ingest", "iso20022", "testdata", "*.xml"))
	if len(files) == 0 {
		t.Fatal("no ISO 20022 testdata")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.File(ctx, filepath.Base(f), data); err != nil {
			t.Logf("%s: %v (its dead letter is checked too)", f, err)
		}
	}
	if err := in.DeadLetter(ctx, "api", "transaction[0]", "amount is not a number", []byte(`{"amount": 12.5}`)); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	for _, p := range publicTopics {
		v := loadValidator(t, p.name)
		if _, err := bus.ReplayWithin(ctx, kc, p.name, bus.Partitions(kc.Partitions), time.Second, func(r *kgo.Record) error {
			seen[p.name]++
			if typ := bus.Header(r, schemas.HeaderType); !slices.Contains(p.ce, typ) {
				t.Errorf("%s: ce_type %q is not one of %v", bus.Where(r), typ, p.ce)
			}
			for _, e := range v.validate(r.Value) {
				t.Errorf("%s: %s\n%s", bus.Where(r), e, r.Value)
			}
			return nil
		}); err != nil && !isStalled(err) {
			t.Fatalf("replay %s: %v", p.name, err)
		}
	}
	for _, topic := range []string{schemas.TopicBankTransactions, schemas.TopicLoans, schemas.TopicBorrowers, schemas.TopicAudit, schemas.TopicStatements, schemas.TopicDeadLetters} {
		if seen[topic] == 0 {
			t.Errorf("nothing was written to %s: the test checks nothing there", topic)
		}
	}
	t.Logf("records validated per topic: %v", seen)
}

func isStalled(err error) bool {
	var stalled *bus.ErrReplayStalled
	return errors.As(err, &stalled)
}

// What the ISO 20022 reader emits validates, record by record, against
// the topic it is published to (ingest publishes expected payments of a
// pain.008 or pain.001 through package collect).
func TestWhatTheReaderEmitsValidates(t *testing.T) {
	byTopic := map[string]*validator{}
	for _, p := range publicTopics {
		byTopic[p.name] = loadValidator(t, p.name)
	}
	files, _ := filepath.Glob(filepath.Join("..", "ingest", "iso20022", "testdata", "*.xml"))
	kinds := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := iso20022.ReadAll(fh, filepath.Base(f), iso20022.DefaultLimits())
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, rec := range recs {
			var topic string
			switch rec.(type) {
			case recon.BankTransaction, recon.Return, recon.StatusReport:
				topic = schemas.TopicBankTransactions
			case recon.Statement:
				topic = schemas.TopicStatements
			case recon.Expected:
				topic = schemas.TopicExpected
			default:
				t.Fatalf("%s: record %d is a %T: which topic?", f, i, rec)
			}
			kinds[topic]++
			checkValue(t, byTopic[topic], filepath.Base(f), rec)
		}
	}
	for _, topic := range []string{schemas.TopicBankTransactions, schemas.TopicStatements, schemas.TopicExpected} {
		if kinds[topic] == 0 {
			t.Errorf("the testdata gave no record for %s", topic)
		}
	}
}

// What the matcher and the ledger write — decisions, journal entries (a
// payment of a loan, a parked item with its transaction), statement proofs
// — validates.
func TestWhatTheMatcherWritesValidates(t *testing.T) {
	entries, decisions, brk := matcherRecords(t)
	v := loadValidator(t, schemas.TopicLedgerEntries)
	for _, e := range entries {
		checkValue(t, v, "entry "+e.ID, e)
	}
	v = loadValidator(t, schemas.TopicMatches)
	for _, d := range decisions {
		checkValue(t, v, "decision "+d.TransactionID+" "+string(d.Outcome), d)
	}
	checkValue(t, loadValidator(t, schemas.TopicReconciliation), "chain break", brk)
}

// matcherRecords runs transactions through the matcher's router and poster
// (a payment of a loan, money for no loan parked with its item, a second
// sighting, a pending one), seals the entries as the ledger does, and
// proves a statement's chaining.
func matcherRecords(t *testing.T) ([]recon.Entry, []recon.Decision, recon.Break) {
	t.Helper()
	loans := matcher.NewLoans()
	if err := loans.Put(recon.Loan{LoanID: "L-1", VirtualIBAN: virtualIBAN, Currency: "EUR", Principal: dec("1000"),
		Schedule: []recon.Instalment{{DueDate: "2026-04-01", Principal: dec("250"), Interest: dec("12.5")}}}); err != nil {
		t.Fatal(err)
	}
	router, poster := matcher.NewRouter(loans), matcher.NewPoster(loans)
	var decisions []recon.Decision
	var entries []recon.Entry
	for _, tx := range []recon.BankTransaction{
		{AccountIBAN: lenderIBAN, VirtualIBAN: virtualIBAN, Direction: recon.Credit, Amount: dec("262.5"), Currency: "EUR", Status: recon.Booked, BookingDate: "2026-04-01", EndToEndID: "E2E-1"},
		{AccountIBAN: lenderIBAN, Direction: recon.Credit, Amount: dec("99.99"), Currency: "EUR", Status: recon.Booked, BookingDate: "2026-04-02", BankReference: "ACSR-2", CounterpartyName: "Unknown payer"},
		{AccountIBAN: lenderIBAN, VirtualIBAN: virtualIBAN, Direction: recon.Credit, Amount: dec("262.5"), Currency: "EUR", Status: recon.Booked, BookingDate: "2026-04-01", EndToEndID: "E2E-1", BankReference: "ACSR-1"},
		{AccountIBAN: lenderIBAN, Direction: recon.Credit, Amount: dec("5"), Currency: "EUR", Status: recon.Pending, TransactionID: "TX-3"},
	} {
		tx.Type, tx.Source, tx.ID = recon.TypeTransaction, "api", recon.IdentityKey(tx)
		d, routed, _ := router.Route(tx)
		if routed == nil {
			d.DecidedAt = testNow
			decisions = append(decisions, d)
			continue
		}
		res := poster.Post(testNow, *routed)
		entries = append(entries, res.Entries...)
		if res.Decision != nil {
			decisions = append(decisions, *res.Decision)
		}
	}
	var head ledger.Head
	for i := range entries {
		head = ledger.Seal(head, &entries[i])
	}
	if len(entries) < 2 || len(decisions) < 3 {
		t.Fatalf("%d entries and %d decisions: the cases did not reach the matcher's paths", len(entries), len(decisions))
	}
	if !slices.ContainsFunc(entries, func(e recon.Entry) bool { return e.Item != nil }) {
		t.Fatal("no suspense entry with its item")
	}
	opening := dec("100")
	st := recon.Statement{Type: recon.TypeStatement, ID: "MSG-2/STMT-2", Source: "camt053", MessageID: "MSG-2", AccountIBAN: lenderIBAN,
		ToDate: "2026-04-30", Currency: "EUR", OpeningBalance: &opening, BalanceCheck: "ok"}
	b := proofs.Chain(testNow, &proofs.Mark{StatementID: "MSG-1/STMT-1", Date: "2026-03-31", Closing: dec("-12.34")}, st)
	if b == nil {
		t.Fatal("no chain break")
	}
	return entries, decisions, *b
}

// Records no code path here builds (alerts, expected payments with every
// status field) validate as recon marshals them.
func TestOtherRecordsValidate(t *testing.T) {
	exp := recon.Expected{Type: recon.TypeExpected, ID: "E2E-C-1", Kind: recon.Collection, LoanID: "L-1", DueDate: "2026-04-01", Amount: dec("262.50"),
		Currency: "EUR", MandateID: "MDT-1", MandateSigned: "2026-01-15", SequenceType: "RCUR", Scheme: "CORE", RequestedDate: "2026-04-01",
		WindowDays: 5, MessageID: "PAIN8-1", PaymentInfoID: "PMT-1", AccountIBAN: lenderIBAN, Status: recon.ExpectedOverdue, StatusOn: "2026-04-07"}
	checkValue(t, loadValidator(t, schemas.TopicExpected), "expected", exp)
	for _, a := range []recon.Alert{
		{ID: "suspense_age/EUR", Rule: "suspense-age", Kind: "suspense_age", State: "firing", Subject: "EUR", Value: dec("3"), Threshold: dec("2"), Currency: "EUR", At: testNow, Message: "3 items older than 2 days"},
		{ID: "expected_overdue/E2E-C-1", Rule: "overdue", Kind: "expected_overdue", State: "resolved", Subject: "E2E-C-1", Value: dec("0"), Threshold: dec("0"), At: testNow, Message: "settled", Expected: &exp},
	} {
		checkValue(t, loadValidator(t, schemas.TopicAlerts), "alert "+a.ID, a)
	}
	checkValue(t, loadValidator(t, schemas.TopicDeadLetters), "dead letter without raw bytes",
		recon.DeadLetter{ID: "dl-1", Source: "route", Reason: "tombstone", At: testNow})
}

// The schemas refuse what recon would refuse or misread: each case is a
// valid record with one change.
func TestSchemasRefuse(t *testing.T) {
	tx := `{"type":"transaction","id":"bt_0123456789abcdef01234567","source":"api","account_iban":"FR7630006000011234567890189","direction":"credit","amount":"262.50","currency":"EUR","status":"booked","booking_date":"2026-04-01","end_to_end_id":"E2E-1"}`
	loan := `{"loan_id":"L-1","virtual_iban":"FR7630001007941234567890185","currency":"EUR","principal":"1000","schedule":[{"due_date":"2026-04-01","principal":"250","interest":"12.5","fees":"0"}]}`
	for _, c := range []struct {
		name, topic, base string
		set               map[string]any // "" value: delete the field
		want              string
	}{
		{"a valid transaction", schemas.TopicBankTransactions, tx, nil, ""},
		{"a transaction without type or status", schemas.TopicBankTransactions, tx, map[string]any{"type": "", "status": ""}, ""},
		{"amount as a JSON number", schemas.TopicBankTransactions, tx, map[string]any{"amount": 262.5}, "not of type string"},
		{"amount with an exponent", schemas.TopicBankTransactions, tx, map[string]any{"amount": "2.625e2"}, "does not match"},
		{"a negative amount", schemas.TopicBankTransactions, tx, map[string]any{"amount": "-262.50"}, "does not match"},
		{"six fraction digits", schemas.TopicBankTransactions, tx, map[string]any{"amount": "262.500001"}, "does not match"},
		{"no id", schemas.TopicBankTransactions, tx, map[string]any{"id": ""}, `"id" is missing`},
		{"a producer's own id", schemas.TopicBankTransactions, tx, map[string]any{"id": "evt-1"}, "does not match"},
		{"direction in", schemas.TopicBankTransactions, tx, map[string]any{"direction": "in"}, "not one of"},
		{"lower-case currency", schemas.TopicBankTransactions, tx, map[string]any{"currency": "eur"}, "does not match"},
		{"an IBAN with spaces", schemas.TopicBankTransactions, tx, map[string]any{"account_iban": "FR76 3000 6000 0112 3456 7890 189"}, "does not match"},
		{"a virtual IBAN in lower case", schemas.TopicBankTransactions, tx, map[string]any{"virtual_iban": "fr7630001007941234567890185"}, "does not match"},
		{"a date with slashes", schemas.TopicBankTransactions, tx, map[string]any{"booking_date": "2026/04/01"}, "does not match"},
		{"type loan", schemas.TopicBankTransactions, tx, map[string]any{"type": "loan"}, "alternatives hold"},
		{"a valid loan", schemas.TopicLoans, loan, nil, ""},
		{"a borrower's loan", schemas.TopicLoans, loan, map[string]any{"virtual_iban": "", "borrower_id": "B-1"}, ""},
		{"a loan with neither", schemas.TopicLoans, loan, map[string]any{"virtual_iban": ""}, "anyOf"},
		{"a loan without principal", schemas.TopicLoans, loan, map[string]any{"principal": ""}, `"principal" is missing`},
		{"a loan id with a slash", schemas.TopicLoans, loan, map[string]any{"loan_id": "L/1"}, "does not match"},
		{"a borrower without virtual IBAN", schemas.TopicBorrowers, `{"borrower_id":"B-1","virtual_iban":"FR7630001007941234567890185"}`, map[string]any{"virtual_iban": ""}, `"virtual_iban" is missing`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(c.base), &m); err != nil {
				t.Fatal(err)
			}
			for k, v := range c.set {
				if v == "" {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			b, _ := json.Marshal(m)
			errs := strings.Join(loadValidator(t, c.topic).validate(b), "\n")
			switch {
			case c.want == "" && errs != "":
				t.Fatalf("refused:\n%s", errs)
			case c.want != "" && !strings.Contains(errs, c.want):
				t.Fatalf("errors %q, want one containing %q", errs, c.want)
			}
		})
	}
}

func checkValue(t *testing.T, v *validator, what string, rec any) {
	t.Helper()
	b, err := bus.Marshal(rec)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, e := range v.validate(b) {
		t.Errorf("%s: %s\n%s", what, e, b)
	}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }
