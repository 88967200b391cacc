package iso20022

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.jsonl")

// TestGolden reads every testdata/*.xml and compares its records, one JSON
// line each, with testdata/<name>.golden.jsonl.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			recs, sum, err := ReadAll(bytes.NewReader(raw), filepath.Base(f), DefaultLimits())
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			for _, r := range recs {
				b, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				out.Write(b)
				out.WriteByte('\n')
			}
			b, _ := json.Marshal(sum)
			out.Write(b)
			out.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".xml") + ".golden.jsonl"
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

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		ns, msg, ver string
		ok           bool
	}{
		{"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02", "camt.053", "001.02", true},
		{"urn:iso:std:iso:20022:tech:xsd:camt.054.001.11", "camt.054", "001.11", true},
		{"urn:iso:std:iso:20022:tech:xsd:pacs.004.001.10", "pacs.004", "001.10", true},
		{"http://www.six-interbank-clearing.com/de/pain.002.001.03.ch.02.xsd", "pain.002", "001.03.ch.02", true},
		{"urn:iso:std:iso:20022:tech:xsd:camt", "", "", false},
		{"urn:weird-namespace", "", "", false},
		{"", "", "", false},
	} {
		msg, ver, ok := Kind(tc.ns)
		if msg != tc.msg || ver != tc.ver || ok != tc.ok {
			t.Errorf("Kind(%q) = %q, %q, %v; want %q, %q, %v", tc.ns, msg, ver, ok, tc.msg, tc.ver, tc.ok)
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"100.00", "100", ""},
		{"0", "0", ""},
		{"12.34567", "12.34567", ""},
		{"123456789012345678", "123456789012345678", ""},
		{"1.234567", "", "6 fraction digits"},
		{"1e3", "", "not a plain decimal"},
		{"1E+3", "", "not a plain decimal"},
		{"-5.00", "", "not a plain decimal"},
		{"+5.00", "", "not a plain decimal"},
		{"1,00", "", "not a plain decimal"},
		{"1234567890123456789", "", "MaxAmountDigits (18)"},
		{"", "", "empty"},
		{".5", "", "not a decimal"},
		{"5.", "", "not a decimal"},
	} {
		got, err := ParseAmount(tc.in, 18)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAmount(%q) error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseAmount(%q): %v", tc.in, err)
		case !got.Equal(decimal.RequireFromString(tc.want)):
			t.Errorf("ParseAmount(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestStreamingErrorLeavesEmitted documents the contract: records emitted
// before a failure stay emitted, ReadAll returns none.
func TestStreamingErrorLeavesEmitted(t *testing.T) {
	raw, err := os.ReadFile("testdata/camt053_v02.xml")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(raw, []byte(`<Amt Ccy="EUR">20.00</Amt>`), []byte(`<Amt Ccy="EUR">2e1</Amt>`), 1)
	n := 0
	_, err = Read(bytes.NewReader(bad), "bad.xml", DefaultLimits(), func(any) error { n++; return nil })
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Path, "Stmt[1]/Ntry[3]/Amt") {
		t.Fatalf("want error at Ntry[3]/Amt, got %v", err)
	}
	if n == 0 {
		t.Fatal("want records emitted before the failure")
	}
	recs, _, err := ReadAll(bytes.NewReader(bad), "bad.xml", DefaultLimits())
	if err == nil || recs != nil {
		t.Fatalf("ReadAll = %d records, %v", len(recs), err)
	}
}

func TestEmitErrorReturned(t *testing.T) {
	raw, _ := os.ReadFile("testdata/camt053_v02.xml")
	stop := errors.New("stop")
	_, err := Read(bytes.NewReader(raw), "x", DefaultLimits(), func(any) error { return stop })
	if err != stop {
		t.Fatalf("got %v, want the emit error", err)
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xml")
	unsup := filepath.Join(dir, "pain001.xml")
	os.WriteFile(bad, []byte(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>`), 0o644)
	os.WriteFile(unsup, []byte(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn/></Document>`), 0o644)
	var out, errOut bytes.Buffer
	ok := Inspect([]string{"testdata/pacs004_v10.xml", bad, unsup, filepath.Join(dir, "missing.xml")}, &out, &errOut)
	if ok {
		t.Error("Inspect ok with a rejected file")
	}
	if lines := strings.Count(out.String(), "\n"); lines != 2 {
		t.Errorf("want 2 records, got %d:\n%s", lines, out.String())
	}
	e := errOut.String()
	for _, want := range []string{"rejected: " + bad, "unsupported: " + unsup, "pain.001.001.09 is not read", "missing.xml"} {
		if !strings.Contains(e, want) {
			t.Errorf("errOut lacks %q:\n%s", want, e)
		}
	}
	var ret recon.Return
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &ret); err != nil || ret.ReturnedAmount.String() != "1200" {
		t.Errorf("first record %+v, %v", ret, err)
	}
}
