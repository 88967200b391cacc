package schemas_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest/iso20022"
	"github.com/reconhq/recon/schemas"
)

// The Python example producer (examples/python) computes identity keys,
// partition keys and partitions on its own; its test checks them against
// the vectors Go writes here, with recon's own functions, and validates
// with the jsonschema package the sample records Go marshals here (a
// second validator for the schemas, beside validate_test.go's).
// `go test ./schemas/ -run TestPythonVectors -update` rewrites the file.
const vectorsFile = "../examples/python/testdata/vectors.json"

// identityVector is what names a sighting (the fields of a bank
// transaction recon reads for it) and the names recon gives it.
type identityVector struct {
	AccountIBAN    string          `json:"account_iban"`
	Direction      recon.Direction `json:"direction"`
	BankReference  string          `json:"bank_reference,omitempty"`
	EndToEndID     string          `json:"end_to_end_id,omitempty"`
	TransactionID  string          `json:"transaction_id,omitempty"`
	EntryReference string          `json:"entry_reference,omitempty"`
	MandateID      string          `json:"mandate_id,omitempty"`
	ProducerID     string          `json:"producer_id,omitempty"`
	ID             string          `json:"id"`
	PartitionKey   string          `json:"partition_key"`
}

type partitionVector struct {
	Key        string `json:"key"`
	Partitions int32  `json:"partitions"`
	Partition  int32  `json:"partition"`
}

type recordSample struct {
	Topic string          `json:"topic"`
	What  string          `json:"what"`
	Value json.RawMessage `json:"value"`
}

type vectors struct {
	About      string            `json:"about"`
	Identity   []identityVector  `json:"identity"`
	Partitions []partitionVector `json:"partitions"`
	Records    []recordSample    `json:"records"`
}

func makeVectors(t *testing.T) vectors {
	t.Helper()
	v := vectors{About: "Written by go test ./schemas/ -run TestPythonVectors -update from recon.IdentityKey, recon.SightingKey, recon.PartitionKey and bus.Partition; read by examples/python/test_producer.py."}
	tx := func(account string, dir recon.Direction, set func(*recon.BankTransaction)) recon.BankTransaction {
		t := recon.BankTransaction{AccountIBAN: account, Direction: dir}
		set(&t)
		return t
	}
	for _, t := range []recon.BankTransaction{
		tx(lenderIBAN, recon.Credit, func(t *recon.BankTransaction) { t.BankReference = "ACSR-20260401-0001" }),
		tx(lenderIBAN, recon.Credit, func(t *recon.BankTransaction) { t.EndToEndID = "E2E-L-1-2026-04" }),
		tx(lenderIBAN, recon.Debit, func(t *recon.BankTransaction) { t.EndToEndID = "E2E-L-1-2026-04" }),
		tx(lenderIBAN, recon.Credit, func(t *recon.BankTransaction) {
			t.BankReference, t.EndToEndID, t.TransactionID = "ACSR-1", "E2E-1", "TX-1" // the bank's reference decides
		}),
		tx(lenderIBAN, recon.Credit, func(t *recon.BankTransaction) { t.EndToEndID, t.TransactionID = "NOTPROVIDED", "TX-9" }),
		tx(lenderIBAN, recon.Credit, func(t *recon.BankTransaction) { t.EndToEndID, t.EntryReference = "notprovided", "ENTRY-7" }),
		tx("fr76 3000 6000 0112 3456 7890 189", recon.Credit, func(t *recon.BankTransaction) { t.EndToEndID = "  E2E-spaced  " }),
		tx(lenderIBAN, recon.Credit, func(t *recon.BankTransaction) { t.MandateID, t.ProducerID = "MDT-1", "evt-42" }), // a mandate id is no identity
		tx("DE89370400440532013000", recon.Debit, func(t *recon.BankTransaction) { t.ProducerID = "prêt-éàü/1" }),
	} {
		id := recon.IdentityKey(t)
		if id == "" {
			id = recon.SightingKey(t.AccountIBAN, t.Direction, "producer", t.ProducerID)
		}
		v.Identity = append(v.Identity, identityVector{AccountIBAN: t.AccountIBAN, Direction: t.Direction, BankReference: t.BankReference,
			EndToEndID: t.EndToEndID, TransactionID: t.TransactionID, EntryReference: t.EntryReference, MandateID: t.MandateID,
			ProducerID: t.ProducerID, ID: id, PartitionKey: recon.PartitionKey(t)})
	}
	keys := []string{"", "a", "ab", "abc", "abcd", "abcde", "suspense", "L-1", "prêt-éàü", "\x7f\u0080\u00ff"}
	for _, iv := range v.Identity {
		keys = append(keys, iv.PartitionKey)
	}
	for _, k := range keys {
		for _, n := range []int32{1, 3, 6, 12, 100, math.MaxInt32} {
			v.Partitions = append(v.Partitions, partitionVector{Key: k, Partitions: n, Partition: bus.Partition([]byte(k), n)})
		}
	}
	v.Records = sampleRecords(t)
	return v
}

// sampleRecords are records as recon marshals them, one or more of every
// public topic.
func sampleRecords(t *testing.T) []recordSample {
	t.Helper()
	var out []recordSample
	add := func(topic, what string, rec any) {
		b, err := bus.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recordSample{Topic: topic, What: what, Value: b})
	}
	for _, name := range []string{"camt054_v10.xml", "camt053_v02.xml", "pacs004_v10.xml", "pain002_v03.xml", "pain008_v09.xml"} {
		f, err := os.Open(filepath.Join("..", "ingest", "iso20022", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := iso20022.ReadAll(f, name, iso20022.DefaultLimits())
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, rec := range recs {
			switch r := rec.(type) {
			case recon.Statement:
				add(schemas.TopicStatements, name, r)
			case recon.Expected:
				add(schemas.TopicExpected, name, r)
			default:
				add(schemas.TopicBankTransactions, name, r)
			}
		}
	}
	entries, decisions, brk := matcherRecords(t)
	for _, e := range entries {
		add(schemas.TopicLedgerEntries, "matcher entry "+e.Kind, e)
	}
	for _, d := range decisions {
		add(schemas.TopicMatches, "matcher decision "+string(d.Outcome), d)
	}
	add(schemas.TopicReconciliation, "proofs.Chain", brk)
	loan := recon.Loan{LoanID: "L-1", VirtualIBAN: virtualIBAN, Currency: "EUR", Principal: dec("1000"),
		Schedule: []recon.Instalment{{DueDate: "2026-04-01", Principal: dec("250"), Interest: dec("12.5"), Fees: dec("0")}}}
	add(schemas.TopicLoans, "loan", loan)
	add(schemas.TopicLoans, "loan of a borrower", recon.Loan{LoanID: "L-2", BorrowerID: "B-1", Currency: "EUR", Principal: dec("300")})
	add(schemas.TopicBorrowers, "borrower", recon.Borrower{ID: "B-1", Name: "Paul", VirtualIBAN: "FR7630001007940000000000123"})
	after := loan
	after.Principal = dec("1200")
	add(schemas.TopicAudit, "amendment", recon.Audit{ID: "loan-amended-L-1-0a1b", Kind: recon.AuditLoanAmended, Subject: "L-1", Before: &loan, After: &after,
		Reason: "top-up", Actor: "ops", EffectiveDate: "2026-03-01", At: testNow})
	add(schemas.TopicAlerts, "alert", recon.Alert{ID: "suspense_age/EUR", Rule: "suspense-age", Kind: "suspense_age", State: "firing", Subject: "EUR",
		Value: dec("3"), Threshold: dec("2"), Currency: "EUR", At: testNow, Message: "3 items older than 2 days"})
	add(schemas.TopicDeadLetters, "dead letter", recon.DeadLetter{ID: "dl-1", Source: "api", Where: "transaction[0]", Reason: "amount is not a number",
		Raw: []byte(`{"amount": 12.5}`), At: testNow, Size: 16})
	return out
}

// TestPythonVectors checks that examples/python/testdata/vectors.json is
// what recon's functions give today.
func TestPythonVectors(t *testing.T) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(makeVectors(t)); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(vectorsFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v; generate it: go test ./schemas/ -run TestPythonVectors -update", err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("%s is not what recon gives; regenerate: go test ./schemas/ -run TestPythonVectors -update", vectorsFile)
	}
}
