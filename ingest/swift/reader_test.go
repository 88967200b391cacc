package swift

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.jsonl")

// TestGolden reads every testdata/*.sta and compares its records, one JSON
// line each, and its summary with testdata/<name>.golden.jsonl.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.sta")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			recs, sum, err := ReadAll(bytes.NewReader(raw), filepath.Base(f), DefaultLimits())
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var out bytes.Buffer
			for _, r := range append(recs, sum) {
				b, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				out.Write(b)
				out.WriteByte('\n')
			}
			golden := strings.TrimSuffix(f, ".sta") + ".golden.jsonl"
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(want, out.Bytes()) {
				t.Errorf("records differ from %s (run with -update and review the diff):\n%s", golden, out.String())
			}
		})
	}
}

func TestParse61(t *testing.T) {
	d := decimal.RequireFromString
	for _, tc := range []struct {
		in                      string
		value, booking          recon.Date
		dir                     recon.Direction
		reversal                bool
		amt                     string
		code, customer, bankRef string
		err                     string
	}{
		{in: "2601050105CR250,00NTRFLOAN-42//BK1", value: "2026-01-05", booking: "2026-01-05", dir: recon.Credit, amt: "250", code: "NTRF", customer: "LOAN-42", bankRef: "BK1"},
		{in: "2601021231D300,00NTRFNONREF", value: "2026-01-02", booking: "2025-12-31", dir: recon.Debit, amt: "300", code: "NTRF", customer: "NONREF"},
		{in: "2512310102C25,00NTRFNONREF", value: "2025-12-31", booking: "2026-01-02", dir: recon.Credit, amt: "25", code: "NTRF", customer: "NONREF"},
		{in: "2607100710RD50,00NRTINONREF//RTN042", value: "2026-07-10", booking: "2026-07-10", dir: recon.Credit, reversal: true, amt: "50", code: "NRTI", customer: "NONREF", bankRef: "RTN042"},
		{in: "2607110711RC25,00NRTIREF-889", value: "2026-07-11", booking: "2026-07-11", dir: recon.Debit, reversal: true, amt: "25", code: "NRTI", customer: "REF-889"},
		{in: "2607110711RCR25,00NRTIREF-889", value: "2026-07-11", booking: "2026-07-11", dir: recon.Debit, reversal: true, amt: "25", code: "NRTI", customer: "REF-889"},
		{in: "240312    DD212,39NMSCNONREF//", value: "2024-03-12", dir: recon.Debit, amt: "212.39", code: "NMSC", customer: "NONREF"},
		{in: "110527D000000001213,28N0440121470966", value: "2011-05-27", dir: recon.Debit, amt: "1213.28", code: "N044", customer: "0121470966"},
		{in: "2606010601D1234,NTRFNONREF", value: "2026-06-01", booking: "2026-06-01", dir: recon.Debit, amt: "1234", code: "NTRF", customer: "NONREF"},
		{in: "2606030603D,50NCOMNONREF", value: "2026-06-03", booking: "2026-06-03", dir: recon.Debit, amt: "0.5", code: "NCOM", customer: "NONREF"},
		{in: "1602300301DR6,00N024NONREF", value: "2016-02-29", booking: "2016-03-01", dir: recon.Debit, amt: "6", code: "N024", customer: "NONREF"},
		{in: "2103310331C50,00 NTRFNONREF//X", value: "2021-03-31", booking: "2021-03-31", dir: recon.Credit, amt: "50", code: "NTRF", customer: "NONREF", bankRef: "X"},
		{in: "241231C9,99", value: "2024-12-31", dir: recon.Credit, amt: "9.99"},
		{in: "2011301130CN220000,00//19239782213", value: "2020-11-30", booking: "2020-11-30", dir: recon.Credit, amt: "220000", bankRef: "19239782213"},
		{in: "0312091209D880,FTRFREF:BPHPBK/081203/0003//59512092915002", value: "2003-12-09", booking: "2003-12-09", dir: recon.Debit, amt: "880", code: "FTRF", customer: "REF:BPHPBK/081203/0003", bankRef: "59512092915002"},
		{in: "2613010101C1,00NTRF", err: "invalid value date"},
		{in: "2601011301C1,00NTRF", err: "invalid entry date"},
		{in: "260101X1,00NTRF", err: "no debit/credit mark"},
		{in: "260101C1,00,00NTRF", err: "not digits"},
		{in: "260101C1234567890123456789,00NTRF", err: "more than MaxAmountDigits"},
		{in: "260101CNTRF", err: "empty amount"},
		{in: "260101C1,00", err: ""},
		{in: "260101C1,00-X", err: "no transaction type"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			e, err := parse61(tc.in, 18)
			if tc.err != "" || err != nil {
				if err == nil || tc.err == "" || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if tc.amt == "" {
				return
			}
			if e.value != tc.value || e.booking != tc.booking || e.dir != tc.dir || e.reversal != tc.reversal ||
				!e.amt.Equal(d(tc.amt)) || e.code != tc.code || e.customerRef != tc.customer || e.bankRef != tc.bankRef {
				t.Errorf("got %+v", e)
			}
		})
	}
}

func TestBalanceAndAmount(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"473,17", "473.17", ""},
		{"000000000473,17", "473.17", ""},
		{"5,", "5", ""},
		{",50", "0.5", ""},
		{"1234", "1234", ""},
		{"1000.12", "1000.12", ""},
		{"1.000,12", "", "not digits"},
		{"-5,00", "", "not digits"},
		{"1e5", "", "not digits"},
		{",", "", "no digit"},
		{"", "", "empty"},
		{"1234567890123456789,00", "", "MaxAmountDigits"},
		{strings.Repeat("0", 40), "", "too long"},
	} {
		got, err := parseAmount(tc.in, 18)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(decimal.RequireFromString(tc.want)) {
			t.Errorf("%q: %v %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestAccountID(t *testing.T) {
	for in, want := range map[string]string{
		"DE89370400440532013000":          "DE89370400440532013000",
		"NL08INGB0000001234EUR":           "NL08INGB0000001234",
		"NL91 ABNA 0417 1643 00 EUR":      "NL91ABNA0417164300",
		"BARCGB22/GB29NWBK60161331926819": "GB29NWBK60161331926819",
		"50880050/0194787400":             "50880050/0194787400",
		"1291.99.348EUR":                  "1291.99.348EUR",
	} {
		if got := accountID(in); got != want {
			t.Errorf("accountID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  info
	}{
		{"german SEPA", []string{"166?00SEPA-GUTSCHRIFT?20EREF+E2E-1?21SVWZ+Rate Januar?30COBADEFFXXX?31DE02120300000000202051", "?32MAX MUSTERMANN"},
			info{endToEnd: "E2E-1", remittance: "Rate Januar", name: "MAX MUSTERMANN", iban: "DE02120300000000202051", bic: "COBADEFFXXX"}},
		{"german SEPA, reference cut over two subfields", []string{"166?20EREF+1234567890123456789012?21345?22MREF+M-1?23SVWZ+text"},
			info{endToEnd: "1234567890123456789012345", mandate: "M-1", remittance: "text"}},
		{"german SEPA, NOTPROVIDED", []string{"166?20EREF+NOTPROVIDED?21SVWZ+x"}, info{remittance: "x"}},
		{"german old", []string{"051?00Bank Transfer Credit?10930226?20QQW53T2245ZGY46J ABBUCH", "UNG?21VOM PAYPAL-KONTO?3050070010?310175526300", "?32PAYPAL?34000"},
			info{remittance: "QQW53T2245ZGY46J ABBUCHUNG VOM PAYPAL-KONTO", name: "PAYPAL"}},
		{"dutch", []string{"/EREF/EV1234REP/CNTP/NL91ABNA0417164300/NAME/ACME BV"}, info{endToEnd: "EV1234REP", iban: "NL91ABNA0417164300", name: "ACME BV"}},
		{"dutch CNTP positional", []string{"/CNTP/NL57ABNA0876543211/ABNANL2A/B Bert///REMI/USTD//22-08", "-2014 Omschrijving/"},
			info{bic: "ABNANL2A", name: "B Bert", remittance: "22-08-2014 Omschrijving"}}, // the IBAN fails its check: not kept
		{"dutch structured creditor reference", []string{"/TRTP/SEPA OVERBOEKING/IBAN/NL91ABNA0417164300/BIC/ABNANL2A/NAME/X/REMI/STRD/CUR/1234567890/EREF/NOTPROVIDED"},
			info{iban: "NL91ABNA0417164300", bic: "ABNANL2A", name: "X", creditorRef: "1234567890"}},
		{"dutch IBAN that is none", []string{"/IBAN/NL00ABNA0000000000/NAME/Y"}, info{name: "Y"}},
		{"free text", []string{"CHEQUE 00042 RENT AUGUST"}, info{remittance: "CHEQUE 00042 RENT AUGUST"}},
		{"free text, two lines", []string{"basically some information here", "lots of information"}, info{remittance: "basically some information here lots of information"}},
		{"free text wrapped at 65", []string{"Lorem ipsum dolor sit amet, consetetur sadipscing elitr, seda", "diam"}, info{remittance: "Lorem ipsum dolor sit amet, consetetur sadipscing elitr, sedadiam"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := details(tc.lines); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestRejects: each broken file is refused with its line, field and reason.
func TestRejects(t *testing.T) {
	const head = ":20:R\n:25:DE89370400440532013000\n:28C:1/1\n"
	for _, tc := range []struct {
		name, in string
		line     int
		field    string
		reason   string
		limit    bool
	}{
		{"no message", "hello\n", 0, "", "no MT940/MT942 message", false},
		{"no account", ":20:R\n:28C:1\n:60F:C260101EUR1,00\n:62F:C260101EUR1,00\n-\n", 1, "", "no :25: account", false},
		{"no opening", head + ":62F:C260101EUR1,00\n-\n", 1, "", "no opening balance", false},
		{"no closing", head + ":60F:C260101EUR1,00\n-\n", 1, "", "no closing balance", false},
		{"bad balance", head + ":60F:C260101E1,00\n", 4, ":60F:", "unreadable balance", false},
		{"bad balance date", head + ":60F:C261301EUR1,00\n", 4, ":60F:", "invalid date", false},
		{"bad amount", head + ":60F:C260101EUR1,0,0\n", 4, ":60F:", "not digits", false},
		{"line before currency", ":20:R\n:25:X\n:61:260101C1,00NTRF\n", 3, ":61:", "before the currency", false},
		{"two accounts", head + ":25:X\n", 4, ":25:", "second :25:", false},
		{"field outside", ":25:X\n", 1, ":25:", "outside a message", false},
		{"control character", head + ":86:a\x00b\n", 4, "", "control character", false},
		{"undefined byte", head + ":86:a\x81b\n", 4, "", "neither UTF-8 nor windows-1252", false},
		{"long line", head + ":86:" + strings.Repeat("x", 2000) + "\n", 4, "", "line longer", true},
		{"preamble", strings.Repeat("junk\n", 20), 17, "", "MaxPreambleLines", true},
		{"long field", head + ":60F:C260101EUR1,00\n:61:260101C1,00NTRF\n:86:" + strings.Repeat("x\n", 300), 6, ":86:", "MaxFieldLines", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadAll(strings.NewReader(tc.in), "f.sta", DefaultLimits())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want an *Error, got %v", err)
			}
			if e.File != "f.sta" || e.Line != tc.line || e.Field != tc.field || !strings.Contains(e.Reason, tc.reason) || errors.Is(err, ErrLimit) != tc.limit {
				t.Errorf("got %#v (%v), want line %d field %q reason %q limit %v", e, err, tc.line, tc.field, tc.reason, tc.limit)
			}
		})
	}
}

// A bank reference or end-to-end id twice in one message names two lines:
// the second is named by its position, not taken for a redelivery.
func TestRepeatedReferenceIsTwoMovements(t *testing.T) {
	in := ":20:R\n:25:DE89370400440532013000\n:28C:1\n:60F:C260101EUR0,\n" +
		":61:260101C1,00NTRFX//SAME\n:61:260101C1,00NTRFX//SAME\n:62F:C260101EUR2,\n-\n"
	recs, _, err := ReadAll(strings.NewReader(in), "f", DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	a, b := recs[0].(recon.BankTransaction), recs[1].(recon.BankTransaction)
	if a.ID == b.ID || a.ID != recon.IdentityKey(a) {
		t.Errorf("ids %s and %s: want the first by its reference, the second by position", a.ID, b.ID)
	}
}
