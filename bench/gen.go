package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Kinds of generated bank transactions.
const (
	KindVirtualIBAN = "virtual_iban" // a transfer to the loan's virtual IBAN
	KindLarge       = "large_credit" // a lump sum to a virtual IBAN, above the alert threshold
	KindCollection  = "dd_collection"
	KindReturn      = "dd_return"
	KindRemittance  = "remittance_text"
	KindCreditorRef = "creditor_reference"
	KindUnknown     = "unknown_iban" // ends in suspense
	KindCharge      = "bank_charge"
	KindDuplicate   = "duplicate" // the same money seen again by another source
)

// mix is the share of each kind in per mille, in the order they are drawn;
// the virtual IBAN transfers take the rest. Other rules and suspense
// (remittance, creditor reference, unknown IBAN, charges) are 5.5 %.
var mix = []struct {
	kind     string
	perMille int
}{
	{KindDuplicate, 20},
	{KindReturn, 10},
	{KindCollection, 100},
	{KindRemittance, 20},
	{KindCreditorRef, 10},
	{KindUnknown, 20},
	{KindCharge, 5},
	{KindLarge, 5},
}

// LargeCreditThreshold is the large_credit alert rule's threshold (EUR);
// every KindLarge transaction is at least this.
const LargeCreditThreshold = "5000"

const largeCents = 600000 // 6,000.00

// GenConfig sizes a workload. The same Seed gives the same workload,
// apart from Run, which keeps the ids of one run apart from every other.
type GenConfig struct {
	Seed   uint64
	Run    string // short, upper-case alphanumeric; in every id
	Loans  int
	Events int
}

// Event is one bank transaction to publish.
type Event struct {
	Kind string
	Txn  recon.BankTransaction
}

// Expected is what the ledger must show once every event is processed,
// computed by the generator alone, in cents.
type Expected struct {
	Transactions int // distinct transaction ids, each posting at least one entry
	Duplicates   int
	Suspense     int   // open suspense items
	SuspenseSum  int64 // their total
	Bank         int64 // bank account: debits minus credits
	// Paid and Credit per loan index that saw money: what the receivable
	// parts received, and the borrower's credit (overpayment).
	Paid, Credit map[int]int64
	LargeCredits map[string]bool // transaction ids that must raise an alert
	Kinds        map[string]int
}

// Workload is a generated run: loans are made on demand from the seed.
type Workload struct {
	Cfg     GenConfig
	Account string // the lender's bank account IBAN
	Events  []Event
	Expect  Expected
}

// LoanID, VirtualIBAN and MandateID name loan i of run.
func LoanID(run string, i int) string      { return "L" + run + "-" + strconv.Itoa(i) }
func VirtualIBAN(run string, i int) string { return iban(run, '1', i) }
func MandateID(run string, i int) string   { return "M" + run + "-" + strconv.Itoa(i) }

// iban is an IBAN of run (German length: the run id left-padded with
// zeros to 8 characters, a kind, 9 digits of n), check digits computed so
// that ingest would take it: kind '0' is the lender's account, '1' a
// loan's virtual IBAN, 'X' a virtual IBAN no loan holds.
func iban(run string, kind byte, n int) string {
	return recon.IBANFor("DE", strings.Repeat("0", 8-len(run))+run+fmt.Sprintf("%c%09d", kind, n))
}

func cents(c int64) decimal.Decimal {
	return decimal.RequireFromString(fmt.Sprintf("%d.%02d", c/100, c%100))
}

// loanTerms are a loan's instalment totals in cents (12 monthly).
func loanTerms(seed uint64, i int) (principal int64, inst [12]struct{ principal, interest, fees int64 }) {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	principal = int64(1000+r.IntN(19000)) * 100 // 1,000 .. 20,000 EUR
	rate := int64(3 + r.IntN(7))                // % a year
	per := principal / 12
	for k := range inst {
		inst[k].principal = per
		if k == 11 {
			inst[k].principal = principal - per*11
		}
		inst[k].interest = (principal - per*int64(k)) * rate / 1200
		if k == 0 {
			inst[k].fees = 150
		}
	}
	return principal, inst
}

// Loan builds loan i of the workload, with its 12-month schedule.
func (w *Workload) Loan(i int) recon.Loan {
	principal, inst := loanTerms(w.Cfg.Seed, i)
	l := recon.Loan{LoanID: LoanID(w.Cfg.Run, i), VirtualIBAN: VirtualIBAN(w.Cfg.Run, i), Currency: "EUR",
		Principal: cents(principal), MandateID: MandateID(w.Cfg.Run, i),
		Borrower: &recon.Borrower{Name: "Borrower " + strconv.Itoa(i), IBAN: recon.IBANFor("FR", fmt.Sprintf("%023d", i))}}
	for k, in := range inst {
		l.Schedule = append(l.Schedule, recon.Instalment{DueDate: recon.Date(fmt.Sprintf("2026-%02d-05", k+1)),
			Principal: cents(in.principal), Interest: cents(in.interest), Fees: cents(in.fees)})
	}
	return l
}

func owed(seed uint64, i int) int64 {
	_, inst := loanTerms(seed, i)
	var sum int64
	for _, in := range inst {
		sum += in.principal + in.interest + in.fees
	}
	return sum
}

// Generate makes the workload of cfg.
func Generate(cfg GenConfig) (*Workload, error) {
	if cfg.Loans < 1 || cfg.Loans >= 1e9 || cfg.Events < 1 || cfg.Events >= 1e9 || cfg.Run == "" || len(cfg.Run) > 8 {
		return nil, fmt.Errorf("bench: need 1 to 10^9-1 loans and events and a run id of 1 to 8 characters (loans %d, events %d, run %q)", cfg.Loans, cfg.Events, cfg.Run)
	}
	w := &Workload{Cfg: cfg, Account: iban(cfg.Run, '0', 0), Events: make([]Event, 0, cfg.Events)}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	net := map[int]int64{}    // per loan: money in minus returns
	nextInst := map[int]int{} // next instalment each loan pays
	var postable []int        // event indexes a duplicate may repeat
	type coll struct{ event, loan int }
	var collections []coll // not yet returned
	ex := &w.Expect
	ex.LargeCredits = map[string]bool{}
	ex.Kinds = map[string]int{}
	instalment := func(i int) int64 {
		_, inst := loanTerms(cfg.Seed, i)
		k := nextInst[i] % 12
		nextInst[i]++
		return inst[k].principal + inst[k].interest + inst[k].fees
	}
	for n := 0; n < cfg.Events; n++ {
		t := recon.BankTransaction{Type: recon.TypeTransaction, Source: "webhook", AccountIBAN: w.Account,
			Direction: recon.Credit, Currency: "EUR", Status: recon.Booked, BookingDate: "2026-03-05", ValueDate: "2026-03-05",
			EndToEndID: "E2E-" + cfg.Run + "-" + strconv.Itoa(n), BankReference: "ASR" + cfg.Run + strconv.Itoa(n)}
		kind := KindVirtualIBAN
		pick := r.IntN(1000)
		for _, m := range mix {
			if pick < m.perMille {
				kind = m.kind
				break
			}
			pick -= m.perMille
		}
		if kind == KindDuplicate && len(postable) == 0 || kind == KindReturn && len(collections) == 0 {
			kind = KindVirtualIBAN
		}
		loan := r.IntN(cfg.Loans)
		var amount int64
		large := false
		switch kind {
		case KindDuplicate:
			orig := w.Events[postable[r.IntN(len(postable))]].Txn
			orig.Source, orig.MessageID = "camt.053", "MSG-"+cfg.Run+"-"+strconv.Itoa(n)
			w.Events = append(w.Events, Event{Kind: kind, Txn: orig})
			ex.Duplicates++
			ex.Kinds[kind]++
			continue
		case KindReturn:
			j := r.IntN(len(collections))
			c := collections[j]
			collections[j] = collections[len(collections)-1]
			collections = collections[:len(collections)-1]
			orig := w.Events[c.event].Txn
			t.Direction, t.MandateID, t.EndToEndID, t.Amount = recon.Debit, orig.MandateID, orig.EndToEndID, orig.Amount
			t.ReturnReason, t.BankTxCode = "AM04", "PMNT/IDDT/UPDD"
			amount = -mustCents(orig.Amount)
			loan = c.loan
		case KindCollection:
			amount = instalment(loan)
			t.MandateID, t.BankTxCode = MandateID(cfg.Run, loan), "PMNT/IDDT/ESDD"
			collections = append(collections, coll{n, loan})
		case KindRemittance:
			amount = instalment(loan)
			t.RemittanceInfo = "loan " + LoanID(cfg.Run, loan) + " instalment"
		case KindCreditorRef:
			amount = instalment(loan)
			// The lender's own reference: a loan id is not an RF body
			// (its '-'), and an RF whose check fails is only text.
			t.CreditorReference = LoanID(cfg.Run, loan)
		case KindUnknown:
			amount = 1000 + int64(r.IntN(50000))
			t.VirtualIBAN = iban(cfg.Run, 'X', n)
			ex.Suspense++
			ex.SuspenseSum += amount
			loan = -1
		case KindCharge:
			amount = -int64(50 + r.IntN(450))
			t.Direction, t.IsCharge, t.BankTxCode = recon.Debit, true, "PMNT/CCRD/CHRG"
			loan = -1
		case KindLarge:
			amount = largeCents
			t.VirtualIBAN = VirtualIBAN(cfg.Run, loan)
			large = true
		default:
			amount = instalment(loan)
			t.VirtualIBAN = VirtualIBAN(cfg.Run, loan)
			t.RemittanceInfo = "instalment " + strconv.Itoa(nextInst[loan])
		}
		if kind != KindReturn {
			abs := amount
			if abs < 0 {
				abs = -abs
			}
			t.Amount = cents(abs)
		}
		ex.Bank += amount
		if loan >= 0 {
			net[loan] += amount
		}
		if t.Direction == recon.Credit {
			postable = append(postable, n)
		}
		t.ID = recon.IdentityKey(t) // as ingest names it: the route stage checks
		if large {
			ex.LargeCredits[t.ID] = true
		}
		ex.Transactions++
		ex.Kinds[kind]++
		w.Events = append(w.Events, Event{Kind: kind, Txn: t})
	}
	ex.Paid, ex.Credit = map[int]int64{}, map[int]int64{}
	for i, in := range net {
		o := owed(cfg.Seed, i)
		ex.Paid[i] = min(in, o)
		if in > o {
			ex.Credit[i] = in - o
		}
	}
	return w, nil
}

func mustCents(d decimal.Decimal) int64 { return d.Shift(2).IntPart() }
