package cfonb

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

// TestGolden reads every testdata/*.txt and compares its records and
// summary, one JSON line each, with testdata/<name>.golden.jsonl.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
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
			golden := strings.TrimSuffix(f, ".txt") + ".golden.jsonl"
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

// record is a 120-character record of account 30004/00003/00012345678 in
// EUR with the given columns set (1-based).
func record(cols map[int]string) string {
	b := []byte(strings.Repeat(" ", RecordLength))
	copy(b, "0130004    00003EUR2 00012345678  050126")
	copy(b[90:], "0000000001000{")
	for c, s := range cols {
		copy(b[c-1:], s)
	}
	return string(b)
}

func TestAmount(t *testing.T) {
	for _, tc := range []struct {
		zone, dec, ccy, want, err string
	}{
		{"0000000005607L", "2", "EUR", "-560.73", ""},
		{"0000000000190E", "2", "EUR", "19.05", ""},
		{"0000000001904}", "2", "EUR", "-190.4", ""},
		{"0000000001000{", "2", "EUR", "100", ""},
		{"0000000000000{", "2", "EUR", "0", ""},
		{"0000000000012I", "0", "JPY", "129", ""},
		{"0000000000012R", "3", "KWD", "-0.129", ""},
		{"000000000001 {", "2", "EUR", "", "not 13 digits"},
		{"0000000000012S", "2", "EUR", "", "not a signed digit"},
		{"00000000000123", "2", "EUR", "", "not a signed digit"},
		{"0000000001000{", "3", "EUR", "", "3 decimals for EUR"},
		{"0000000001000{", "X", "EUR", "", "no number of decimals"},
	} {
		in := record(map[int]string{17: tc.ccy + tc.dec, 91: tc.zone}) + "\n"
		recs, _, err := ReadAll(strings.NewReader(in+record(map[int]string{1: "07", 17: tc.ccy + tc.dec, 91: tc.zone})+"\n"), "f", DefaultLimits())
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.zone, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.zone, err)
			continue
		}
		st := recs[0].(recon.Statement)
		if !st.OpeningBalance.Equal(decimal.RequireFromString(tc.want)) || st.BalanceCheck != "ok" {
			t.Errorf("%s %s: got %s (%s), want %s", tc.zone, tc.ccy, st.OpeningBalance, st.BalanceCheck, tc.want)
		}
	}
}

func TestAccountID(t *testing.T) {
	for _, tc := range []struct{ bank, branch, account, want string }{
		{"20041", "01005", "0500013M026", "FR1420041010050500013M02606"}, // La Banque Postale's published example
		{"30004", "00003", "00012345678", recon.IBANFor("FR", "300040000300012345678"+mustKey(t, "30004", "00003", "00012345678"))},
		{"3000A", "00003", "00012345678", "3000A 00003 00012345678"},
		{"30004", "00003", "0001234567-", "30004 00003 0001234567-"},
	} {
		got := accountID(tc.bank, tc.branch, tc.account)
		if got != tc.want {
			t.Errorf("accountID(%s, %s, %s) = %s, want %s", tc.bank, tc.branch, tc.account, got, tc.want)
		}
		if strings.HasPrefix(got, "FR") && recon.ValidIBAN(got) != nil {
			t.Errorf("%s is not a valid IBAN", got)
		}
	}
}

func mustKey(t *testing.T, bank, branch, account string) string {
	k, ok := ribKey(bank, branch, account)
	if !ok {
		t.Fatalf("no RIB key for %s %s %s", bank, branch, account)
	}
	return k
}

func TestRejects(t *testing.T) {
	open := record(nil)
	closing := record(map[int]string{1: "07"})
	move := record(map[int]string{1: "04", 43: "050126", 49: "VIR"})
	for _, tc := range []struct {
		name, in      string
		line          int
		field, reason string
	}{
		{"empty", "", 0, "", "no CFONB 120 statement"},
		{"short record", open[:119] + "\n", 1, "", "record of 119 characters"},
		{"unknown record", strings.Replace(open, "01", "03", 1) + "\n", 1, "record code (1-2)", "unknown record code"},
		{"movement outside", move + "\n", 1, "04", "outside a statement"},
		{"complement first", open + "\n" + record(map[int]string{1: "05", 46: "LIB"}) + "\n", 2, "05", "before any movement"},
		{"new statement too early", open + "\n" + open + "\n", 2, "01", "before the new balance"},
		{"no new balance", open + "\n" + move + "\n", 1, "", "no new balance"},
		{"other account", open + "\n" + record(map[int]string{1: "04", 22: "00099999999"}) + "\n", 2, "04 account (22-32)", "in a statement of account"},
		{"other currency", open + "\n" + record(map[int]string{1: "07", 17: "USD"}) + "\n", 2, "07 currency (17-19)", "in a statement in EUR"},
		{"bad date", record(map[int]string{35: "  CART"}) + "\n", 1, "01 date of the previous balance (35-40)", "invalid date"},
		{"bad value date", open + "\n" + record(map[int]string{1: "04", 43: "310226"}) + "\n", 2, "04 value date (43-48)", "invalid date"},
		{"bad encoding", open[:50] + "\x81" + open[51:] + "\n", 1, "", "neither UTF-8 nor windows-1252"},
		{"ok", open + "\n" + move + "\n" + closing + "\n", -1, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadAll(strings.NewReader(tc.in), "f.txt", DefaultLimits())
			if tc.line < 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want an *Error, got %v", err)
			}
			if e.File != "f.txt" || e.Line != tc.line || e.Field != tc.field || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("got %v, want line %d field %q reason %q", err, tc.line, tc.field, tc.reason)
			}
		})
	}
}

// Accented letters of a latin-1 label count as one column each.
func TestLatin1Label(t *testing.T) {
	open := record(nil)
	move := []byte(record(map[int]string{1: "04", 43: "050126", 49: "VIR RECU DE M. LEFEVRE"}))
	move[54] = 0xC7 // column 55, Ç in windows-1252
	in := open + "\n" + string(move) + "\n" + record(map[int]string{1: "07", 91: "0000000001000{"}) + "\n"
	move2 := strings.Replace(in, "0000000001000{", "0000000000000{", 1) // the movement amount zone is zeros
	recs, _, err := ReadAll(strings.NewReader(move2), "f", DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[0].(recon.BankTransaction).RemittanceInfo; got != "VIR REÇU DE M. LEFEVRE" {
		t.Errorf("label %q", got)
	}
}
