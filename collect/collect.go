// Package collect turns loans into payment instructions for the bank and
// follows them: SEPA direct-debit collections of the instalments coming due
// (pain.008.001.09, CORE or B2B) and disbursements to borrowers
// (pain.001.001.10, SCT Inst where possible), each published as a
// recon.Expected keyed by its end-to-end id; and a Tracker that moves every
// expected payment through expected → settled | rejected | returned |
// overdue as bank transactions, pain.002 status reports and returns arrive.
//
// Building is pure (loans, known expected items and the day in; XML and
// expected items out) and deterministic: the same input gives the same
// message id, end-to-end ids and bytes, and an instalment that already has
// a collection in flight, settled or returned is not collected again, so a
// batch can be rebuilt safely. Policy, in one place:
//   - an instalment is collected once per attempt; after a pain.002 reject
//     it is presented again with a new end-to-end id ("-2", "-3", ...);
//     after a return (AM04, MD06, MS02, ...) it is not re-presented
//     automatically;
//   - the first collection on a mandate is FRST and the others RCUR; a
//     mandate whose only collections were rejected is still unused, and
//     while its FRST is in this batch a mandate's later instalments wait;
//   - the requested collection date is the due date, moved to the next
//     TARGET2 business day and to at least the business day after the day
//     the batch is built (SEPA's D-1 for CORE and B2B);
//   - SEPA is euro only and at most two fraction digits: other loans are
//     skipped with the reason, never rounded.
//
// The Kafka side (Loop) keeps the Tracker fed and publishes its status
// changes; the allocation and reversal of the money itself is the matcher's.
package collect

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Account is one side of a SEPA payment.
type Account struct {
	Name string
	IBAN string
	BIC  string // optional: IBAN-only SEPA sends "NOTPROVIDED"
}

// Creditor is the lender collecting: its account and its SEPA creditor
// identifier (e.g. FR72ZZZ123456).
type Creditor struct {
	Account
	ID     string
	Scheme string // CORE (default) or B2B; one scheme per message, as EPC requires
}

// Options of a collection batch.
type Options struct {
	Creditor Creditor
	// DueBy: instalments due on or before this date are collected.
	DueBy recon.Date
	// From, when set: instalments due before it are left alone.
	From recon.Date
	// Today is the day the batch is built; Now is its creation time.
	Today recon.Date
	Now   time.Time
	// WindowDays after the requested date without settlement make an item
	// overdue. Default 5.
	WindowDays int
	// MaxItems bounds one batch. Default 100000.
	MaxItems int
}

// Skip is an instalment or loan left out of a batch, and why.
type Skip struct {
	LoanID  string     `json:"loan_id"`
	DueDate recon.Date `json:"due_date,omitempty"`
	Reason  string     `json:"reason"`
}

// Batch is one message for the bank and the expected items it creates.
type Batch struct {
	MessageID string
	XML       []byte // nil when there is nothing to send
	Items     []recon.Expected
	Skipped   []Skip
}

// SEPA bounds: amounts 0.01..999999999.99 EUR, names 70 characters.
var maxSEPA = decimal.RequireFromString("999999999.99")

const (
	defaultWindowDays = 5
	defaultMaxItems   = 100_000
)

func (o *Options) validate() error {
	c := o.Creditor
	switch {
	case c.Name == "" || c.IBAN == "" || c.ID == "":
		return errors.New("collect: creditor name, IBAN and creditor identifier are required")
	case recon.ValidIBAN(c.IBAN) != nil:
		return fmt.Errorf("collect: creditor IBAN is not an IBAN: %w", recon.ValidIBAN(c.IBAN))
	case c.Scheme != "" && c.Scheme != "CORE" && c.Scheme != "B2B":
		return fmt.Errorf("collect: scheme %q: want CORE or B2B", c.Scheme)
	case !o.DueBy.Valid():
		return fmt.Errorf("collect: due-by date %q is not a date", o.DueBy)
	case o.From != "" && !o.From.Valid():
		return fmt.Errorf("collect: from date %q is not a date", o.From)
	case !o.Today.Valid():
		return fmt.Errorf("collect: today %q is not a date", o.Today)
	}
	if o.Creditor.Scheme == "" {
		o.Creditor.Scheme = "CORE"
	}
	if o.WindowDays <= 0 {
		o.WindowDays = defaultWindowDays
	}
	if o.MaxItems <= 0 {
		o.MaxItems = defaultMaxItems
	}
	return nil
}

// history is what known expected items say about loans and mandates.
type history struct {
	attempts map[string]int            // loan|due -> collections so far
	blocking map[string]recon.Expected // loan|due -> the collection that keeps it from being collected again
	used     map[string]bool           // mandate ids with a collection not rejected
	paid     map[string]bool           // loans with a disbursement not rejected
	tried    map[string]int            // loan -> disbursements so far
}

func newHistory(known []recon.Expected) history {
	h := history{attempts: map[string]int{}, blocking: map[string]recon.Expected{}, used: map[string]bool{},
		paid: map[string]bool{}, tried: map[string]int{}}
	for _, e := range known {
		if e.Kind == recon.Disbursement {
			h.tried[e.LoanID]++
			if e.Status != recon.ExpectedRejected {
				h.paid[e.LoanID] = true
			}
			continue
		}
		k := e.LoanID + "|" + string(e.DueDate)
		h.attempts[k]++
		if e.Status != recon.ExpectedRejected {
			h.blocking[k] = e
			if e.MandateID != "" {
				h.used[e.MandateID] = true
			}
		}
	}
	return h
}

// Collections builds the pain.008 for every instalment of loans due by
// o.DueBy that known (the expected items published so far) does not
// already cover. Loans or instalments that cannot be collected are in
// Skipped with the reason; an error means the options are wrong.
func Collections(loans []recon.Loan, known []recon.Expected, o Options) (Batch, error) {
	if err := o.validate(); err != nil {
		return Batch{}, err
	}
	today, _ := parseDate(o.Today)
	earliest := nextBusinessDay(today)
	h := newHistory(known)
	var b Batch
	sorted := append([]recon.Loan(nil), loans...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].LoanID < sorted[j].LoanID })
	for _, l := range sorted {
		if why := collectable(l); why != "" {
			if len(dueInstalments(l, o)) > 0 {
				b.Skipped = append(b.Skipped, Skip{LoanID: l.LoanID, Reason: why})
			}
			continue
		}
		firstInBatch := false
		for _, in := range dueInstalments(l, o) {
			k := l.LoanID + "|" + string(in.DueDate)
			if prev, ok := h.blocking[k]; ok {
				if prev.Status == recon.ExpectedReturned {
					b.Skipped = append(b.Skipped, Skip{l.LoanID, in.DueDate, fmt.Sprintf("returned (%s) as %s: not re-presented automatically", prev.Reason, prev.ID)})
				}
				continue // in flight or settled: nothing to do
			}
			amt := in.Principal.Add(in.Interest).Add(in.Fees)
			if why := sepaAmount(amt); why != "" {
				b.Skipped = append(b.Skipped, Skip{l.LoanID, in.DueDate, why})
				continue
			}
			if firstInBatch {
				b.Skipped = append(b.Skipped, Skip{l.LoanID, in.DueDate, "waits for the first (FRST) collection of mandate " + l.MandateID})
				continue
			}
			seq := "RCUR"
			if !h.used[l.MandateID] {
				seq, firstInBatch = "FRST", true
			}
			due, _ := parseDate(in.DueDate)
			req := onOrAfter(due)
			if req.Before(earliest) {
				req = earliest
			}
			if len(b.Items) == o.MaxItems {
				return Batch{}, fmt.Errorf("collect: more than MaxItems (%d) collections in one batch; lower --due-by or raise the limit", o.MaxItems)
			}
			attempt := h.attempts[k] + 1
			b.Items = append(b.Items, recon.Expected{
				Type: recon.TypeExpected, ID: endToEndID("", l.LoanID, in.DueDate, attempt), Kind: recon.Collection,
				LoanID: l.LoanID, DueDate: in.DueDate, Amount: amt, Currency: "EUR", MandateID: l.MandateID,
				MandateSigned: l.MandateSignedOn, SequenceType: seq, Scheme: o.Creditor.Scheme,
				RequestedDate: dateOf(req), WindowDays: o.WindowDays, AccountIBAN: normIBAN(o.Creditor.IBAN),
				Status: recon.ExpectedOpen, StatusOn: o.Today,
			})
		}
	}
	if len(b.Items) == 0 {
		return b, nil
	}
	b.MessageID = messageID(o.Creditor.ID+"|"+o.Creditor.Scheme, b.Items)
	byLoan := map[string]recon.Loan{}
	for _, l := range loans {
		byLoan[l.LoanID] = l
	}
	doc := pain008(b.MessageID, o, b.Items, byLoan)
	for i := range b.Items {
		b.Items[i].MessageID = b.MessageID
		b.Items[i].PaymentInfoID = paymentInfoID(b.MessageID, b.Items[i].SequenceType, b.Items[i].RequestedDate)
	}
	var err error
	b.XML, err = marshal(doc)
	return b, err
}

// collectable says why a loan cannot be collected by SEPA direct debit, or "".
func collectable(l recon.Loan) string {
	switch {
	case l.Currency != "EUR":
		return "currency " + l.Currency + ": SEPA direct debits are in EUR only"
	case l.MandateID == "":
		return "no mandate_id"
	case !l.MandateSignedOn.Valid():
		return "no mandate_signed_on (the mandate's signature date is required)"
	case l.Borrower == nil || l.Borrower.IBAN == "":
		return "no borrower IBAN to debit"
	case recon.ValidIBAN(l.Borrower.IBAN) != nil:
		return "the borrower IBAN to debit is not an IBAN: " + recon.ValidIBAN(l.Borrower.IBAN).Error()
	}
	return ""
}

func dueInstalments(l recon.Loan, o Options) []recon.Instalment {
	var out []recon.Instalment
	for _, in := range l.Schedule {
		if in.DueDate > o.DueBy || (o.From != "" && in.DueDate < o.From) {
			continue
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DueDate < out[j].DueDate })
	return out
}

// sepaAmount says why amt cannot be sent in a SEPA message, or "".
func sepaAmount(amt decimal.Decimal) string {
	switch {
	case !amt.IsPositive():
		return "amount " + amt.String() + " is not positive"
	case amt.GreaterThan(maxSEPA):
		return "amount " + amt.String() + " exceeds SEPA's 999999999.99"
	case !amt.Equal(amt.Truncate(2)):
		return "amount " + amt.String() + " has more than 2 fraction digits (SEPA): not rounded"
	}
	return ""
}

// messageID is "RC" + 16 hex digits of a digest of the batch's items, so a
// rebuilt batch has the same id (banks refuse a duplicate MsgId: a resent
// batch is recognised as such).
func messageID(scope string, items []recon.Expected) string {
	h := sha256.New()
	h.Write([]byte(scope))
	for _, it := range items {
		fmt.Fprintf(h, "\x00%s|%s|%s|%s", it.ID, it.Amount.StringFixed(2), it.RequestedDate, it.SequenceType)
	}
	return "RC" + hex.EncodeToString(h.Sum(nil))[:16]
}

func paymentInfoID(msgID, seq string, req recon.Date) string {
	return msgID + "-" + seq + "-" + strings.ReplaceAll(string(req), "-", "")
}

func pain008(msgID string, o Options, items []recon.Expected, loans map[string]recon.Loan) pain008Doc {
	doc := pain008Doc{Xmlns: nsPain008}
	doc.GrpHdr = groupHeader{MsgID: msgID, CreDtTm: o.Now.UTC().Format("2006-01-02T15:04:05"), NbOfTxs: len(items),
		CtrlSum: total(items).StringFixed(2), InitgPty: party{Nm: sepaText(o.Creditor.Name, 70)}}
	index := map[string]int{}
	for _, it := range items {
		id := paymentInfoID(msgID, it.SequenceType, it.RequestedDate)
		i, ok := index[id]
		if !ok {
			i = len(doc.PmtInf)
			index[id] = i
			doc.PmtInf = append(doc.PmtInf, ddPmtInf{
				PmtInfID: id, PmtMtd: "DD", SvcLvl: "SEPA", LclInstrm: o.Creditor.Scheme, SeqTp: it.SequenceType,
				ReqdColltnDt: string(it.RequestedDate), Cdtr: party{Nm: sepaText(o.Creditor.Name, 70)},
				CdtrAcct: account{IBAN: normIBAN(o.Creditor.IBAN)}, CdtrAgt: newAgent(o.Creditor.BIC), ChrgBr: "SLEV",
				CdtrSchmeID: schemeID{ID: o.Creditor.ID, Scheme: "SEPA"},
			})
		}
		l := loans[it.LoanID]
		p := &doc.PmtInf[i]
		p.Tx = append(p.Tx, ddTxInf{
			EndToEndID: it.ID, InstdAmt: newAmount(it.Currency, it.Amount), MndtID: it.MandateID,
			DtOfSgntr: string(it.MandateSigned), DbtrAgt: newAgent(""), Dbtr: party{Nm: borrowerName(l)},
			DbtrAcct: account{IBAN: normIBAN(l.Borrower.IBAN)},
			Ustrd:    sepaText("Loan "+it.LoanID+" instalment "+string(it.DueDate), 140),
		})
	}
	for i := range doc.PmtInf {
		p := &doc.PmtInf[i]
		p.NbOfTxs = len(p.Tx)
		sum := decimal.Zero
		for _, t := range p.Tx {
			sum = sum.Add(decimal.RequireFromString(t.InstdAmt.Value))
		}
		p.CtrlSum = sum.StringFixed(2)
	}
	return doc
}

func total(items []recon.Expected) decimal.Decimal {
	sum := decimal.Zero
	for _, it := range items {
		sum = sum.Add(it.Amount)
	}
	return sum
}

func normIBAN(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")) }

// borrowerName is the name SEPA requires for the borrower's side.
func borrowerName(l recon.Loan) string {
	if l.Borrower != nil {
		if n := sepaText(l.Borrower.Name, 70); n != "" {
			return n
		}
	}
	return sepaText("Borrower of loan "+l.LoanID, 70)
}
