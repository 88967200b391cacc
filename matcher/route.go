package matcher

import (
	"regexp"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Route kinds, what the Poster is asked to do.
const (
	KindMatch   = "match"   // a new booked transaction, to its loan or to suspense
	KindRematch = "rematch" // money released from suspense to a loan
	KindAssign  = "assign"  // a person assigns a suspense item
)

// Routed is the Router's output, re-keyed by loan ("suspense" when none).
type Routed struct {
	Kind        string                `json:"kind"`
	Key         string                `json:"key"`
	Transaction recon.BankTransaction `json:"transaction"`
	LoanID      string                `json:"loan_id,omitempty"`
	Rule        string                `json:"rule"`
	Confidence  decimal.Decimal       `json:"confidence"`
	Evidence    string                `json:"evidence,omitempty"`
	Reason      string                `json:"reason,omitempty"`
	// Amount to allocate for rematch and split assignments.
	Amount      *decimal.Decimal `json:"amount,omitempty"`
	Note        string           `json:"note,omitempty"`
	Actor       string           `json:"actor,omitempty"`
	Allocations []Allocation     `json:"allocations,omitempty"`
}

// Allocation is one share of a suspense item assigned to a loan.
type Allocation struct {
	LoanID string          `json:"loan_id"`
	Amount decimal.Decimal `json:"amount"`
}

// Seen is what the Router remembers of an identity key: enough to tell a
// redelivery from a conflicting sighting. It is the dedup changelog's value.
type Seen struct {
	Amount    decimal.Decimal `json:"amount"`
	Currency  string          `json:"currency"`
	Direction recon.Direction `json:"direction"`
}

// Router deduplicates bank transactions by identity key and runs the
// matching cascade. It owns the identity keys of its input partitions.
type Router struct {
	loans     *Loans
	seen      map[string]Seen
	Threshold decimal.Decimal
}

// NewRouter returns a Router over the shared loans table.
func NewRouter(loans *Loans) *Router {
	return &Router{loans: loans, seen: map[string]Seen{}, Threshold: decimal.RequireFromString("0.75")}
}

// Remember restores one identity key from the changelog.
func (r *Router) Remember(id string, s Seen) { r.seen[id] = s }

// Forget drops the identity keys, when a partition is revoked.
func (r *Router) Forget() { r.seen = map[string]Seen{} }

// Route decides one sighting. It returns the decision for this sighting
// and, when money must be booked, the routed record and the identity to
// remember (both nil otherwise).
func (r *Router) Route(t recon.BankTransaction) (recon.Decision, *Routed, *Seen) {
	d := recon.Decision{TransactionID: t.ID, Amount: t.Amount, Currency: t.Currency, Direction: t.Direction, BookingDate: t.BookingDate}
	if t.Status != "" && t.Status != recon.Booked {
		d.Outcome, d.Rule, d.Reason = recon.NotBooked, "status", "status "+string(t.Status)+": posts when the booked sighting arrives"
		return d, nil, nil
	}
	if prev, ok := r.seen[t.ID]; ok {
		if prev.Amount.Equal(t.Amount) && prev.Currency == t.Currency && prev.Direction == t.Direction {
			d.Outcome, d.Rule, d.Reason = recon.Duplicate, "identity", "already booked under this identity"
			return d, nil, nil
		}
		d.Outcome, d.Rule = recon.Suspense, "identity-conflict"
		d.Reason = "same identity seen before as " + prev.Direction.String() + " " + prev.Amount.String() + " " + prev.Currency + "; this sighting is not posted"
		return d, nil, nil
	}
	s := &Seen{Amount: t.Amount, Currency: t.Currency, Direction: t.Direction}
	rt := r.cascade(t)
	d.Rule, d.Confidence, d.Evidence, d.LoanID = rt.Rule, rt.Confidence, rt.Evidence, rt.LoanID
	return d, rt, s
}

// The cascade, in order of confidence. Each rule names its evidence.
var loanRefRE = regexp.MustCompile(`(?i)\b(?:loan|pret|prêt|ref)[\s:#-]*([A-Z0-9][A-Z0-9-]{2,40})\b`)

func (r *Router) cascade(t recon.BankTransaction) *Routed {
	rt := &Routed{Kind: KindMatch, Transaction: t}
	match := func(loanID, rule, evidence, conf string) *Routed {
		rt.LoanID, rt.Key, rt.Rule, rt.Evidence, rt.Confidence = loanID, loanID, rule, evidence, decimal.RequireFromString(conf)
		if rt.Confidence.LessThan(r.Threshold) {
			rt.LoanID, rt.Key, rt.Reason = "", suspenseKey, "confidence below threshold"
		}
		return rt
	}
	if t.IsCharge || t.Direction == recon.Debit && strings.HasSuffix(t.BankTxCode, "/CHRG") {
		rt.Key, rt.Rule, rt.Evidence, rt.Confidence = suspenseKey, "bank-charge", "charge record", decimal.NewFromInt(1)
		return rt
	}
	if t.Remainder {
		rt.Key, rt.Rule, rt.Reason, rt.Confidence = suspenseKey, "remainder", "entry details do not add up to the booked amount", decimal.Zero
		return rt
	}
	if id, ok := r.loans.byVIBAN[normIBAN(t.VirtualIBAN)]; ok && t.VirtualIBAN != "" {
		return match(id, "virtual_iban", "virtual IBAN "+t.VirtualIBAN, "1")
	}
	if id, ok := r.loans.byMandate[t.MandateID]; ok && t.MandateID != "" {
		return match(id, "mandate_id", "mandate "+t.MandateID, "0.95")
	}
	if ref := t.CreditorReference; ref != "" {
		if id, ok := r.loanIn(ref); ok {
			return match(id, "creditor_reference", "creditor reference "+ref, "0.9")
		}
	}
	for _, m := range loanRefRE.FindAllStringSubmatch(t.RemittanceInfo, 4) {
		if _, ok := r.loans.byID[m[1]]; ok {
			return match(m[1], "remittance_text", "remittance mentions "+m[1], "0.8")
		}
	}
	rt.Key, rt.Rule, rt.Confidence = suspenseKey, "none", decimal.Zero
	rt.Reason = "no rule matched a known loan"
	if t.VirtualIBAN != "" {
		rt.Reason = "virtual IBAN not (yet) assigned to a loan; re-matched when the loan arrives"
	}
	return rt
}

// loanIn finds a loan id inside a structured creditor reference (RFxx<id>).
func (r *Router) loanIn(ref string) (string, bool) {
	ref = strings.ToUpper(strings.ReplaceAll(ref, " ", ""))
	if len(ref) > 4 && strings.HasPrefix(ref, "RF") {
		if _, ok := r.loans.byID[ref[4:]]; ok {
			return ref[4:], true
		}
	}
	_, ok := r.loans.byID[ref]
	return ref, ok
}

const suspenseKey = "suspense"
