package cfonb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// corpusDir holds the public CFONB 120 files, never copied into the
// repository: $RECON_FIXTURES/cfonb120 when set, else the shared fixtures
// beside the checkout (../shared/fixtures from the repository's root).
var corpusDir = func() string {
	if d := os.Getenv("RECON_FIXTURES"); d != "" {
		return filepath.Join(d, "cfonb120")
	}
	return "../../../shared/fixtures/cfonb120"
}()

// corpusRejected are the files that must be refused (PROVENANCE.md says
// BROKEN), with a word of the reason.
var corpusRejected = map[string]string{
	"OCA-l10n-france_test_cfonb_bad_decimal.txt":                  "3 decimals for EUR",
	"OCA-l10n-france_test_cfonb_bad_lenght.txt":                   "record of 119 characters",
	"OCA-l10n-france_test_cfonb_inv_04_05.txt":                    "complement before any movement",
	"pennylane-hq-cfonb_end_of_statement_without_beginning.txt":   "outside a statement",
	"pennylane-hq-cfonb_invalid_date.txt":                         "record of 116 characters", // its date zone holds "  CART" and the record is short
	"pennylane-hq-cfonb_new_statement_without_previous_ended.txt": "before the new balance (07)",
	"pennylane-hq-cfonb_operation_detail_without_operation.txt":   "complement before any movement",
	"pennylane-hq-cfonb_operation_out_of_statement.txt":           "outside a statement",
}

// TestIntegrationCorpus reads every public CFONB 120 file: the broken ones
// are refused with their reason, the others read whole with every
// statement's balance_check ok, as an independent reading of the file says.
// A missing corpus skips it, and fails it under RECON_REQUIRE_SERVICES=1.
func TestIntegrationCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.txt"))
	if len(files) == 0 {
		msg := "no corpus at " + corpusDir + " (set RECON_FIXTURES to the shared fixtures)"
		if os.Getenv("RECON_REQUIRE_SERVICES") == "1" {
			t.Fatal("RECON_REQUIRE_SERVICES=1 but " + msg)
		}
		t.Skip(msg)
	}
	var read, txns, stmts int
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			recs, sum, err := ReadAll(bytes.NewReader(raw), name, DefaultLimits())
			if want, bad := corpusRejected[name]; bad {
				var e *Error
				if !errors.As(err, &e) || !strings.Contains(e.Reason, want) {
					t.Fatalf("want rejection containing %q, got %v", want, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			read++
			txns += sum.Transactions
			o := oracle(t, raw)
			i := 0
			for _, r := range recs {
				st, ok := r.(recon.Statement)
				if !ok {
					continue
				}
				stmts++
				if i >= len(o) {
					t.Fatalf("more statements than the independent reading's %d", len(o))
				}
				if st.BalanceCheck != "ok" || !st.OpeningBalance.Equal(o[i].open) || !st.ClosingBalance.Equal(o[i].close) ||
					!st.BookedCredits.Sub(st.BookedDebits).Equal(o[i].net) || st.BookedEntries != o[i].movements {
					t.Errorf("statement %s: %s %s→%s net %s over %d; the independent reading %s→%s net %s over %d",
						st.ID, st.BalanceCheck, st.OpeningBalance, st.ClosingBalance, st.BookedCredits.Sub(st.BookedDebits), st.BookedEntries,
						o[i].open, o[i].close, o[i].net, o[i].movements)
				}
				if recon.ValidIBAN(st.AccountIBAN) != nil {
					t.Errorf("statement %s: account %s is not an IBAN", st.ID, st.AccountIBAN)
				}
				i++
			}
			if i != len(o) {
				t.Errorf("%d statements, the independent reading %d", i, len(o))
			}
		})
	}
	t.Logf("%d files read (%d refused as broken), %d statements, %d transactions, balance_check ok in every statement", read, len(corpusRejected), stmts, txns)
}

type oracleStatement struct {
	open, close, net decimal.Decimal
	movements        int
}

// oracle reads the 01, 04 and 07 records by their columns with its own
// decoding of the signed amounts.
func oracle(t *testing.T, raw []byte) []oracleStatement {
	var out []oracleStatement
	for _, l := range strings.Split(strings.ReplaceAll(string(raw), "\r", ""), "\n") {
		if len(strings.TrimSpace(l)) == 0 || strings.HasPrefix(l, "05") {
			continue // complements carry no amount
		}
		zone := l[90:104]
		last := zone[13]
		d := strings.IndexByte("{ABCDEFGHI", last)
		sign := ""
		if d < 0 {
			d, sign = strings.IndexByte("}JKLMNOPQR", last), "-"
		}
		if d < 0 {
			t.Fatalf("oracle: amount %q", zone)
		}
		dec := int32(l[19] - '0')
		a := decimal.RequireFromString(sign + zone[:13] + string(rune('0'+d))).Shift(-dec)
		switch l[:2] {
		case "01":
			out = append(out, oracleStatement{open: a})
		case "04":
			out[len(out)-1].net = out[len(out)-1].net.Add(a)
			out[len(out)-1].movements++
		case "07":
			out[len(out)-1].close = a
		}
	}
	return out
}
