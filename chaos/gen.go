package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Workload is what a scenario sends and, computed without recon, what one
// clean delivery of it must leave behind.
type Workload struct {
	Run       string
	Acct      string // the lender's account IBAN, unique to the run
	Loans     []recon.Loan
	Owed      map[string]decimal.Decimal // loan -> principal
	Credited  map[string]decimal.Decimal // loan -> distinct credits
	Distinct  []recon.BankTransaction    // one per identity
	Sightings []Sighting                 // every delivery, in publishing order
	Unknown   map[string]decimal.Decimal // identity -> amount, to no loan: suspense
	BankNet   decimal.Decimal            // sum of distinct credits
}

// Split cuts the sightings in two, in publishing order, for a scenario that
// publishes them at two moments. The halves name their statement files
// apart, so that ingest does not take the second half's files for
// re-deliveries of the first's; both are checked as the one workload w.
func (w *Workload) Split() (first, second *Workload) {
	a, b := *w, *w
	a.Sightings = w.Sightings[:len(w.Sightings)/2]
	b.Sightings = w.Sightings[len(w.Sightings)/2:]
	b.Run = w.Run + "b"
	return &a, &b
}

// Sighting is one delivery of a transaction: through the producer API or
// as an entry of a camt.053 file.
type Sighting struct {
	T    recon.BankTransaction
	File bool
}

// IDs is the set of the workload's identity keys.
func (w *Workload) IDs() map[string]bool {
	ids := make(map[string]bool, len(w.Distinct))
	for _, t := range w.Distinct {
		ids[recon.IdentityKey(t)] = true
	}
	return ids
}

// loanOf is the loan of a virtual IBAN, "" when none.
func (w *Workload) loanOf(vIBAN string) string {
	for _, l := range w.Loans {
		if l.VirtualIBAN == vIBAN {
			return l.LoanID
		}
	}
	return ""
}

// Expected is a loan as a clean delivery leaves it.
func (w *Workload) Expected(loan string) (paid, outstanding, overpaid decimal.Decimal) {
	net, owed := w.Credited[loan], w.Owed[loan]
	paid = decimal.Min(net, owed)
	return paid, owed.Sub(paid), net.Sub(paid)
}

func pad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s[len(s)-n:]
}

// Generate makes nLoans loans and nTxns distinct credits from seed: most to
// a loan's virtual IBAN (some loans end overpaid), 4% to a virtual IBAN of
// no loan (suspense), a sixth of them delivered twice by another source
// (another producer id, or a camt.053 entry with the same bank reference),
// in a seeded random order. run (digits) makes every id unique to the run.
func Generate(seed uint64, run string, nLoans, nTxns int) *Workload {
	rng := rand.New(rand.NewPCG(seed, 7))
	w := &Workload{Run: run, Acct: recon.IBANFor("FR", pad(run, 9)+"00000000000000"), Owed: map[string]decimal.Decimal{},
		Credited: map[string]decimal.Decimal{}, Unknown: map[string]decimal.Decimal{}}
	vIBAN := func(kind, i int) string { return recon.IBANFor("FR", fmt.Sprintf("%s%d%013d", pad(run, 9), kind, i)) }
	cents := func(lo, hi int) decimal.Decimal { return decimal.New(int64(lo*100+rng.IntN((hi-lo)*100)), -2) }
	for i := range nLoans {
		l := recon.Loan{LoanID: fmt.Sprintf("C%s-%d", run, i), VirtualIBAN: vIBAN(1, i), Currency: "EUR", Principal: cents(500, 3000)}
		w.Loans = append(w.Loans, l)
		w.Owed[l.LoanID] = l.Principal
	}
	for i := range nTxns {
		t := recon.BankTransaction{ID: fmt.Sprintf("c-%s-%d", run, i), AccountIBAN: w.Acct, Direction: recon.Credit,
			Currency: "EUR", BookingDate: "2026-11-27", BankReference: fmt.Sprintf("CR-%s-%d", run, i), Amount: cents(10, 900)}
		if rng.IntN(100) < 4 {
			t.VirtualIBAN = vIBAN(9, i)
			w.Unknown[recon.IdentityKey(t)] = t.Amount
		} else {
			l := w.Loans[rng.IntN(len(w.Loans))]
			t.VirtualIBAN = l.VirtualIBAN
			w.Credited[l.LoanID] = w.Credited[l.LoanID].Add(t.Amount)
		}
		w.BankNet = w.BankNet.Add(t.Amount)
		w.Distinct = append(w.Distinct, t)
		w.Sightings = append(w.Sightings, Sighting{T: t, File: rng.IntN(10) == 0})
		if rng.IntN(6) == 0 {
			again := t
			again.ID = "again-" + t.ID
			w.Sightings = append(w.Sightings, Sighting{T: again, File: rng.IntN(2) == 0})
		}
	}
	rng.Shuffle(len(w.Sightings), func(i, j int) { w.Sightings[i], w.Sightings[j] = w.Sightings[j], w.Sightings[i] })
	return w
}

// CamtEntry is one entry of a generated camt statement.
type CamtEntry struct {
	Ref, Amount, VIBAN, Status string // Status BOOK (default) or PDNG
	E2E                        string // optional end-to-end id
	Rmt                        string // optional remittance information (the XML inside RmtInf)
}

// Camt writes a camt.053 (or camt.052 with report true) of entries.
func Camt(msgID, acct string, report bool, entries []CamtEntry) string {
	var b strings.Builder
	doc, root, stmt := "camt.053.001.02", "BkToCstmrStmt", "Stmt"
	if report {
		doc, root, stmt = "camt.052.001.02", "BkToCstmrAcctRpt", "Rpt"
	}
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:%[3]s"><%[4]s>
<GrpHdr><MsgId>M-%[1]s</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<%[5]s><Id>S-%[1]s</Id><CreDtTm>2026-11-26T20:00:00</CreDtTm><Acct><Id><IBAN>%[2]s</IBAN></Id><Ccy>EUR</Ccy></Acct>`, msgID, acct, doc, root, stmt)
	for _, e := range entries {
		sts := e.Status
		if sts == "" {
			sts = "BOOK"
		}
		e2e := ""
		if e.E2E != "" {
			e2e = "<EndToEndId>" + e.E2E + "</EndToEndId>"
		}
		rmt := ""
		if e.Rmt != "" {
			rmt = "<RmtInf>" + e.Rmt + "</RmtInf>"
		}
		fmt.Fprintf(&b, `<Ntry><Amt Ccy="EUR">%[1]s</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>%[4]s</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><ValDt><Dt>2026-11-26</Dt></ValDt><AcctSvcrRef>%[2]s</AcctSvcrRef>
<NtryDtls><TxDtls><Refs><AcctSvcrRef>%[2]s</AcctSvcrRef>%[5]s</Refs><AmtDtls><TxAmt><Amt Ccy="EUR">%[1]s</Amt></TxAmt></AmtDtls>
<RltdPties><CdtrAcct><Id><IBAN>%[3]s</IBAN></Id></CdtrAcct></RltdPties>%[6]s</TxDtls></NtryDtls></Ntry>`, e.Amount, e.Ref, e.VIBAN, sts, e2e, rmt)
	}
	fmt.Fprintf(&b, `</%s></%s></Document>`, stmt, root)
	return b.String()
}
