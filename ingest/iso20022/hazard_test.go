package iso20022

import (
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/reconhq/recon"
)

const ns053 = `urn:iso:std:iso:20022:tech:xsd:camt.053.001.02`

func base(t *testing.T) string {
	raw, err := os.ReadFile("testdata/camt053_v02.xml")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// repeat streams prefix, n copies of unit, then suffix, without holding them.
func repeat(prefix, unit string, n int, suffix string) io.Reader {
	return io.MultiReader(strings.NewReader(prefix), &unitReader{unit: unit, n: n}, strings.NewReader(suffix))
}

type unitReader struct {
	unit string
	n    int
	off  int
}

func (u *unitReader) Read(p []byte) (int, error) {
	w := 0
	for w < len(p) && u.n > 0 {
		c := copy(p[w:], u.unit[u.off:])
		w += c
		u.off += c
		if u.off == len(u.unit) {
			u.off = 0
			u.n--
		}
	}
	if w == 0 {
		return 0, io.EOF
	}
	return w, nil
}

func TestHazards(t *testing.T) {
	b := base(t)
	open := `<Document xmlns="` + ns053 + `"><BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct><Ntry><AddtlNtryInf>`
	closing := `</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>`
	small := DefaultLimits()
	small.MaxElements = 50
	tiny := DefaultLimits()
	tiny.MaxFileBytes = 1000
	for _, tc := range []struct {
		name   string
		in     func() io.Reader
		lim    Limits
		reason string
		limit  bool
	}{
		{"doctype", str(`<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaa">]>` + b[strings.Index(b, "<Document"):]), Limits{}, "DOCTYPE", false},
		{"entity reference", str(strings.Replace(b, "Loan 42", "&a;&a;", 1)), Limits{}, "malformed XML", false},
		{"deep nesting 1e6", func() io.Reader { return repeat(open, "<a>", 1_000_000, "") }, Limits{}, "MaxDepth (64)", true},
		{"deep envelope 1e6", func() io.Reader { return repeat("", "<e>", 1_000_000, "") }, Limits{}, "MaxDepth (64)", true},
		{"huge text 100MB", func() io.Reader { return repeat(open, "aaaaaaaaaa", 10_000_000, closing) }, Limits{}, "MaxTextBytes (65536)", true},
		{"huge comment with brackets", func() io.Reader { return repeat(open+"<!--", "<><>", 1_000_000, "-->"+closing) }, Limits{}, "MaxTextBytes", true},
		{"huge CDATA", func() io.Reader { return repeat(open+"<![CDATA[", "]>]]x", 1_000_000, "]]>"+closing) }, Limits{}, "MaxTextBytes", true},
		{"huge tag", func() io.Reader { return repeat(open+"<x ", `a="1" `, 1_000_000, "/>"+closing) }, Limits{}, "MaxTextBytes", true},
		{"too many elements", str(b), small, "MaxElements (50)", true},
		{"file too large", str(b), tiny, "MaxFileBytes (1000)", true},
		{"bad utf-8", str(strings.Replace(b, "Loan 42", "Loan \xff\xfe", 1)), Limits{}, "UTF-8", false},
		{"utf-16", str("\xff\xfe<\x00D\x00"), Limits{}, "", false},
		{"unknown encoding", str(strings.Replace(b, `encoding="UTF-8"`, `encoding="Shift_JIS"`, 1)), Limits{}, `"Shift_JIS" not supported`, false},
		{"two roots", str(b + `<Document xmlns="` + ns053 + `"/>`), Limits{}, "second root", false},
		{"trailing bytes", str(b + "garbage"), Limits{}, "trailing text", false},
		{"second Document in envelope", str(`<Env>` + b[strings.Index(b, "<Document"):] + b[strings.Index(b, "<Document"):] + `</Env>`), Limits{}, "second Document", false},
		{"duplicated entry amount", str(strings.Replace(b, `<Amt Ccy="EUR">20.00</Amt>`, `<Amt Ccy="EUR">20.00</Amt><Amt Ccy="EUR">20.00</Amt>`, 1)), Limits{}, "Amt appears more than once", false},
		{"duplicated detail amount", str(strings.Replace(b, `<Amt Ccy="EUR">150.00</Amt>`, `<Amt Ccy="EUR">150.00</Amt><Amt Ccy="EUR">1.00</Amt>`, 1)), Limits{}, "Amt appears more than once", false},
		{"6 decimals", str(strings.Replace(b, `20.00</Amt>`, `20.000001</Amt>`, 1)), Limits{}, "6 fraction digits", false},
		{"exponent", str(strings.Replace(b, `20.00</Amt>`, `2E1</Amt>`, 1)), Limits{}, "not a plain decimal", false},
		{"19 digits", str(strings.Replace(b, `20.00</Amt>`, `1234567890123456789</Amt>`, 1)), Limits{}, "MaxAmountDigits (18)", false},
		{"no currency", str(strings.Replace(b, `<Amt Ccy="EUR">20.00</Amt>`, `<Amt>20.00</Amt>`, 1)), Limits{}, "Ccy", false},
		{"bad indicator", str(strings.Replace(b, `DBIT`, `DEBT`, 1)), Limits{}, "neither CRDT nor DBIT", false},
		{"bad date", str(strings.Replace(b, `<Dt>2024-05-01</Dt></BookgDt>`, `<Dt>2024-02-30</Dt></BookgDt>`, 1)), Limits{}, "invalid date", false},
		{"truncated", str(b[:len(b)/2]), Limits{}, "malformed XML", false},
		{"empty", str(""), Limits{}, "no root element", false},
		{"not xml", str(`{"json": true}`), Limits{}, "text before the root", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			_, err := Read(tc.in(), tc.name, tc.lim, func(any) error { return nil })
			runtime.ReadMemStats(&ms1)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %v", err)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", e.Reason, tc.reason)
			}
			if tc.limit != errors.Is(err, ErrLimit) {
				t.Errorf("errors.Is(ErrLimit) = %v: %v", !tc.limit, err)
			}
			if e.File != tc.name {
				t.Errorf("file %q", e.File)
			}
			if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MB on hostile input", alloc>>20)
			}
			t.Logf("%v", err)
		})
	}
}

func str(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }

func TestUnsupported(t *testing.T) {
	_, err := Read(strings.NewReader(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><FIToFICstmrCdtTrf/></Document>`), "p8", Limits{}, func(any) error { return nil })
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("want ErrUnsupported, got %v", err)
	}
}

func TestWindows1252(t *testing.T) {
	b := strings.Replace(base(t), `encoding="UTF-8"`, `encoding="windows-1252"`, 1)
	b = strings.Replace(b, "Loan 42", "Loan \x80 42", 1)
	recs, _, err := ReadAll(strings.NewReader(b), "w", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[0].(recon.BankTransaction).RemittanceInfo; got != "Loan € 42 May instalment" {
		t.Fatalf("remittance %q", got)
	}
}
