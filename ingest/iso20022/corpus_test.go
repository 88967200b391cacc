package iso20022

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

// corpusDir holds the public ISO 20022 files, never copied into the
// repository: $RECON_FIXTURES/iso20022 when set, else the shared fixtures
// beside the checkout (../shared/fixtures from the repository's root).
var corpusDir = func() string {
	if d := os.Getenv("RECON_FIXTURES"); d != "" {
		return filepath.Join(d, "iso20022")
	}
	return "../../../shared/fixtures/iso20022"
}()

// corpusRejected are the public files that must be refused, with a word of
// the reason (see PROVENANCE.md there).
var corpusRejected = map[string]string{
	"camt_054_Beispiel_NotificationMissing.xml": "no namespace",
	"camt053.v2.wrong.xml":                      "no Stmt",
	"test-camt-parse-5200108-invalid-saldo.xml": "fraction digits",
	"test-camt-parse-invalid.xml":               "not an ISO 20022 message namespace",
	"test-camt-parse-none.xml":                  "no namespace",
	"unsupported.xml":                           "not an ISO 20022 message namespace",
	"invalid_file1":                             "text before the root",
	"invalid_file2":                             "malformed XML",
	"invalid_pain_v11.xml":                      "no namespace",
	"052_valid_namespace.xml":                   "has no BkToCstmrAcctRpt", // namespace-only stubs
	"053_valid_namespace.xml":                   "has no BkToCstmrStmt",
	"general_invalid_namespace.xml":             "has no BkToCstmrStmt",
}

// corpusFiles lists the corpus. A missing corpus skips the test, and fails
// it under RECON_REQUIRE_SERVICES=1 (make test's integration run), so a
// machine without the corpus cannot pass `make test` by skipping it.
func corpusFiles(t testing.TB) []string {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*"))
	if len(files) == 0 {
		msg := "no corpus at " + corpusDir + " (set RECON_FIXTURES to the shared fixtures)"
		if os.Getenv("RECON_REQUIRE_SERVICES") == "1" {
			t.Fatal("RECON_REQUIRE_SERVICES=1 but " + msg)
		}
		t.Skip(msg)
	}
	return files
}

// TestIntegrationCorpus reads every public file. It runs in both of make
// test's passes; its name puts it in the integration run, where a missing
// corpus fails it.
func TestIntegrationCorpus(t *testing.T) {
	read := 0
	for _, f := range corpusFiles(t) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var got []recon.BankTransaction
			prev := entryHook
			entryHook = func(want decimal.Decimal, ccy string, _ recon.Status, recs []recon.BankTransaction) {
				if s := sum(recs); !s.Equal(want) {
					t.Errorf("entry %s: records sum to %s, entry is %s", recs[0].EntryReference, s, want)
				}
			}
			defer func() { entryHook = prev }()
			recs, _, err := ReadAll(strings.NewReader(string(raw)), name, DefaultLimits())
			if want, bad := corpusRejected[name]; bad {
				var e *Error
				if !errors.As(err, &e) || !strings.Contains(e.Reason, want) {
					t.Fatalf("want rejection containing %q, got %v", want, err)
				}
				return
			}
			if errors.Is(err, ErrUnsupported) {
				t.Logf("unsupported: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			read++
			var stmts []recon.Statement
			for _, r := range recs {
				switch v := r.(type) {
				case recon.BankTransaction:
					got = append(got, v)
				case recon.Statement:
					stmts = append(stmts, v)
				}
			}
			// The bank's own statements are trusted with an account that
			// fails the IBAN check (README, producer rules 7): logged, not
			// refused.
			for _, st := range stmts {
				if err := recon.ValidIBAN(st.AccountIBAN); st.AccountIBAN != "" && err != nil {
					t.Logf("statement %s: account %s is not an IBAN: %v", st.ID, st.AccountIBAN, err)
				}
			}
			o := oracle(t, raw)
			if len(stmts) != len(o.checks) {
				t.Fatalf("%d statements, oracle %d", len(stmts), len(o.checks))
			}
			for i, s := range stmts {
				if s.BalanceCheck != o.checks[i] {
					t.Errorf("statement %s: balance_check %s, the bank's arithmetic says %s", s.ID, s.BalanceCheck, o.checks[i])
				}
			}
			sums := map[string]decimal.Decimal{}
			for _, r := range got {
				if r.Status == recon.Booked {
					sums[r.Currency] = sums[r.Currency].Add(signed(r.Direction, r.Amount))
				}
			}
			for c, s := range o.booked {
				if !sums[c].Equal(s) {
					t.Errorf("%s: booked records sum to %s, booked entries to %s", c, sums[c], s)
				}
				delete(sums, c)
			}
			for c, s := range sums {
				if !s.IsZero() {
					t.Errorf("%s: records sum to %s with no booked entries in it", c, s)
				}
			}
		})
	}
	t.Logf("%d corpus files read", read)
}

// xnode is a whole-file DOM, the oracle's independent reading of a file.
type xnode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []*xnode   `xml:",any"`
}

func (n *xnode) all(name string) []*xnode {
	var out []*xnode
	for _, c := range n.Nodes {
		if c.XMLName.Local == name {
			out = append(out, c)
		}
	}
	return out
}

func (n *xnode) get(path string) *xnode {
	for _, p := range strings.Split(path, "/") {
		if n == nil {
			return nil
		}
		cs := n.all(p)
		if len(cs) == 0 {
			return nil
		}
		n = cs[0]
	}
	return n
}

func (n *xnode) str(path string) string {
	if c := n.get(path); c != nil {
		return strings.TrimSpace(c.Text)
	}
	return ""
}

func (n *xnode) walk(name string, fn func(*xnode)) {
	for _, c := range n.Nodes {
		if c.XMLName.Local == name {
			fn(c)
		} else {
			c.walk(name, fn)
		}
	}
}

type oracleResult struct {
	checks []string                   // balance_check per statement, in order
	booked map[string]decimal.Decimal // signed booked entry amounts per currency
}

func oracle(t *testing.T, raw []byte) oracleResult {
	var root xnode
	if err := xml.Unmarshal(raw, &root); err != nil {
		t.Fatalf("oracle: %v", err)
	}
	o := oracleResult{booked: map[string]decimal.Decimal{}}
	amt := func(n *xnode) (decimal.Decimal, string) {
		a := n.get("Amt")
		d := decimal.RequireFromString(strings.TrimSpace(a.Text))
		if n.str("CdtDbtInd") == "DBIT" {
			d = d.Neg()
		}
		for _, at := range a.Attrs {
			if at.Name.Local == "Ccy" {
				return d, at.Value
			}
		}
		return d, ""
	}
	for _, kind := range []string{"Stmt", "Rpt", "Ntfctn"} {
		root.walk(kind, func(s *xnode) {
			bals := map[string]*xnode{}
			for _, b := range s.all("Bal") {
				if c := b.str("Tp/CdOrPrtry/Cd"); bals[c] == nil {
					bals[c] = b
				}
			}
			ccys := map[string]bool{}
			net := decimal.Zero
			for _, e := range s.all("Ntry") {
				sts := e.str("Sts")
				if sts == "" {
					sts = e.str("Sts/Cd")
				}
				if sts != "" && sts != "BOOK" {
					continue
				}
				a, c := amt(e)
				ccys[c] = true
				net = net.Add(a)
				o.booked[c] = o.booked[c].Add(a)
			}
			open, cl := bals["OPBD"], bals["CLBD"]
			if open == nil {
				open = bals["PRCD"]
			}
			check := "n/a"
			if open != nil && cl != nil {
				oa, oc := amt(open)
				ca, cc := amt(cl)
				ccys[oc], ccys[cc] = true, true
				if len(ccys) == 1 {
					check = "mismatch"
					if oa.Add(net).Equal(ca) {
						check = "ok"
					}
				}
			}
			o.checks = append(o.checks, check)
		})
	}
	return o
}
