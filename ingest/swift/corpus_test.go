package swift

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// corpusDir holds the public MT940/MT942 files, never copied into the
// repository: $RECON_FIXTURES/mt940 when set, else the shared fixtures
// beside the checkout (../shared/fixtures from the repository's root).
var corpusDir = func() string {
	if d := os.Getenv("RECON_FIXTURES"); d != "" {
		return filepath.Join(d, "mt940")
	}
	return "../../../shared/fixtures/mt940"
}()

// corpusRejected are the files that must be refused (PROVENANCE.md says
// BROKEN), with a word of the reason.
var corpusRejected = map[string]string{
	"betterplace-mt940_parser_sepa_snippet_broken.txt":            "second :25:",      // statement garbled: two messages run together
	"dovadi-mt940_MT940_voorbeeldbestanden_abnamro.txt":           "MaxPreambleLines", // a prose document around MT940 examples
	"fruitl00p-php-mt940_Rabo_sample2":                            "no :25: account",
	"my-flow-mt940_sepa_snippet_broken_2.sta":                     "no closing balance",
	"sandermarechal-jejik-mt940_K4262927_20200905-080000-952.txt": "no closing balance",
	"svenstaro-mt940-rs_special-cases_unexpected_tag.sta":         "before the :25: account",
	"tryton-mt940_MT940-optional.txt":                             "before the currency is known",
	"wolph-mt940_self-provided_account_identification.sta":        "no opening balance",
	"wolph-mt940_self-provided_gv_codes.sta":                      "no closing balance",
	"wolph-mt940_self-provided_raphaelm.sta":                      "is no currency code",
	"zilverline-mt940_knab_invalid.txt":                           "no closing balance",
}

// corpusNotOK are the files read whole where some statement's own
// arithmetic does not hold (balance_check mismatch, or n/a for lack of
// balances in one currency), and why. The independent reading below agrees
// with each verdict; the check is not loosened for them.
var corpusNotOK = map[string]string{
	"IsraelIyonsi-Mt940.NET_balance-mismatch.sta":                            "hand-made to not add up",
	"IsraelIyonsi-Mt940.NET_currency-flip.sta":                               "n/a: opening in EUR, closing in USD",
	"qoomon-banking-swift-messages-java_valid-mt942-content.txt":             "hand-made MT942: :90D:/:90C: count 75475 for 3 lines",
	"qoomon-banking-swift-messages-java_valid-mt942.txt":                     "hand-made MT942: :90D:/:90C: count 75475 for 3 lines",
	"wolph-mt940_self-provided_mt942.sta":                                    "MT942: :90D: says 2,30 for one line of 0,42",
	"sebastienrousseau-bankstatementparser-loader-mt942_santander_usd.mt942": "n/a: MT942 without balances or :90D:/:90C: totals",
}

// anonymised: the files whose amounts or balances the library authors
// edited without keeping them consistent (opening + lines ≠ closing).
var anonymised = []string{
	"betterplace-mt940_parser_sepa_snippet.txt", "dovadi-mt940_abnamro.txt", "dovadi-mt940_ing.txt",
	"dovadi-mt940_ing_sepa.txt", "dovadi-mt940_rabobank.txt", "dovadi-mt940_unknown.txt",
	"fruitl00p-php-mt940_Abn_sample2", "fruitl00p-php-mt940_Hsbc_sample", "fruitl00p-php-mt940_Ing_sample",
	"fruitl00p-php-mt940_Knab_sample", "fruitl00p-php-mt940_Knab_sample3", "fruitl00p-php-mt940_Rabo_sample",
	"fruitl00p-php-mt940_Rabo_sample3", "fruitl00p-php-mt940_Rabo_sample4",
	"mjebrahimi-SharpMt940Lib.Core_Samples_sns_transactions.txt", "my-flow-mt940_message_separator_in_text.sta",
	"qoomon-banking-swift-messages-java_valid-mt940.txt", "sandermarechal-jejik-mt940_abnamro.txt",
	"sandermarechal-jejik-mt940_bug-core-5401.txt", "sandermarechal-jejik-mt940_deutschebank.txt",
	"sandermarechal-jejik-mt940_ing-dos.txt", "sandermarechal-jejik-mt940_knab.txt",
	"sandermarechal-jejik-mt940_postfinance.txt", "sandermarechal-jejik-mt940_rabobank.txt",
	"sandermarechal-jejik-mt940_sparkasse2.txt", "sandermarechal-jejik-mt940_sparkasse3.txt",
	"sandermarechal-jejik-mt940_triodos.txt", "svenstaro-mt940-rs_abnamro_mt940.sta",
	"svenstaro-mt940-rs_bugs_issue-51.sta", "svenstaro-mt940-rs_sparkasse_buxtehude.sta",
	"webschik-mt940-js_abn-amro-1.STA", "wolph-mt940_self-provided_details_60-63.sta",
	"wolph-mt940_self-provided_malformed_details.sta", "wolph-mt940_self-provided_overly_long_details.sta",
	"wolph-mt940_self-provided_whitespace.sta", "zilverline-mt940_14aug2014.swi",
	"zilverline-mt940_abn_sepa_incasso_doorlopend.txt", "zilverline-mt940_abn_structured_sepa_ideal.txt",
	"zilverline-mt940_abnamro_structured.txt", "zilverline-mt940_anb_sepa_overboeking_belastingdienst.txt",
	"zilverline-mt940_deutsche_bank.txt", "zilverline-mt940_eu_incasso_foreign_transaction.txt",
	"zilverline-mt940_import-16-06-2014.txt", "zilverline-mt940_ing_structured.txt",
	"zilverline-mt940_triodos_multiline_bug.txt",
}

func init() {
	for _, f := range anonymised {
		corpusNotOK[f] = "anonymised by the library's authors: opening balance + lines ≠ closing balance"
	}
}

// corpusFiles lists the corpus. A missing corpus skips the test, and fails
// it under RECON_REQUIRE_SERVICES=1 (make test's integration run).
func corpusFiles(t testing.TB) []string {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*"))
	files = slicesDelete(files, func(f string) bool { return strings.HasSuffix(f, ".md") })
	if len(files) == 0 {
		msg := "no corpus at " + corpusDir + " (set RECON_FIXTURES to the shared fixtures)"
		if os.Getenv("RECON_REQUIRE_SERVICES") == "1" {
			t.Fatal("RECON_REQUIRE_SERVICES=1 but " + msg)
		}
		t.Skip(msg)
	}
	return files
}

func slicesDelete(s []string, del func(string) bool) []string {
	out := s[:0]
	for _, x := range s {
		if !del(x) {
			out = append(out, x)
		}
	}
	return out
}

// TestIntegrationCorpus reads every public MT940/MT942 file: the broken ones
// are refused with their reason, the others read whole, each statement's
// balance_check and sums as an independent reading of the file says.
func TestIntegrationCorpus(t *testing.T) {
	var read, txns, ok, notOK int
	for _, f := range corpusFiles(t) {
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
			var stmts []recon.Statement
			for _, r := range recs {
				if s, isStmt := r.(recon.Statement); isStmt {
					stmts = append(stmts, s)
				}
			}
			o := oracle(raw)
			if len(stmts) != len(o) {
				t.Fatalf("%d statements, the independent reading %d", len(stmts), len(o))
			}
			allOK := true
			for i, s := range stmts {
				if s.BookedEntries != o[i].lines {
					t.Errorf("statement %s: %d lines, the independent reading %d", s.ID, s.BookedEntries, o[i].lines)
				}
				if o[i].check != "" && s.BalanceCheck != o[i].check {
					t.Errorf("statement %s: balance_check %s, the independent reading %s", s.ID, s.BalanceCheck, o[i].check)
				}
				allOK = allOK && s.BalanceCheck == "ok"
			}
			why, listed := corpusNotOK[name]
			switch {
			case allOK && listed:
				t.Errorf("listed as not ok (%s) but every statement's balance_check is ok", why)
			case !allOK && !listed:
				t.Errorf("a statement's balance_check is not ok and the file is not listed in corpusNotOK")
			case allOK:
				ok++
			default:
				notOK++
			}
		})
	}
	t.Logf("%d files read (%d refused as broken), %d transactions; balance_check ok in every statement of %d files, not in %d (listed with the reason)", read, len(corpusRejected), txns, ok, notOK)
}

// oracleStatement is what the independent reading says of a message: its
// :61: count and, for an MT940 (opening and closing balance in one
// currency), whether opening + lines = closing.
type oracleStatement struct {
	lines int
	check string // ok | mismatch | "" (not an MT940 check)
}

var (
	balRE  = regexp.MustCompile(`^:6[02][FM]:([CD])\d{6}([A-Z]{3})([\d,.]+)`)
	lineRE = regexp.MustCompile(`^:61:\d{6}(?:\d{4}| {4})?(R?[CD])[A-Z]?([\d,.]+)`)
)

// oracle reads a file with regular expressions over its lines, nothing of
// the reader's: a message starts at each :20: (after a "{4:" too).
func oracle(raw []byte) []oracleStatement {
	var out []oracleStatement
	var open, closing *decimal.Decimal
	var ccys map[string]bool
	net := decimal.Zero
	done := func() {
		if ccys == nil {
			return
		}
		s := oracleStatement{lines: out[len(out)-1].lines}
		if open != nil && closing != nil && len(ccys) == 1 {
			s.check = "mismatch"
			if open.Add(net).Equal(*closing) {
				s.check = "ok"
			}
		}
		out[len(out)-1] = s
	}
	amount := func(s string) decimal.Decimal {
		s = strings.Replace(s, ",", ".", 1)
		s = strings.TrimSuffix(s, ".")
		if strings.HasPrefix(s, ".") {
			s = "0" + s
		}
		return decimal.RequireFromString(s)
	}
	text := strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\r", "\n")
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, "{4:"); i >= 0 {
			l = l[i+3:]
		}
		l = strings.TrimSpace(strings.Trim(l, "\x01\x03\x1a")) // envelope marks, DOS end of file
		switch {
		case strings.HasPrefix(l, ":20:"):
			done()
			out = append(out, oracleStatement{})
			open, closing, ccys, net = nil, nil, map[string]bool{}, decimal.Zero
		case ccys == nil:
		case strings.HasPrefix(l, ":61:"):
			m := lineRE.FindStringSubmatch(l)
			out[len(out)-1].lines++
			if m != nil {
				a := amount(m[2])
				if m[1] == "D" || m[1] == "RC" {
					a = a.Neg()
				}
				net = net.Add(a)
			}
		case balRE.MatchString(l):
			m := balRE.FindStringSubmatch(l)
			a := amount(m[3])
			if m[1] == "D" {
				a = a.Neg()
			}
			ccys[m[2]] = true
			if strings.HasPrefix(l, ":60") && open == nil {
				open = &a
			} else if strings.HasPrefix(l, ":62") && closing == nil {
				closing = &a
			}
		}
	}
	done()
	return out
}
