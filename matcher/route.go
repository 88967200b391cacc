package matcher

import (
	"regexp"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Route kinds, what the Poster is asked to do.
const (
	KindMatch   = "match"              // a new booked transaction, to its loan or to suspense
	KindRematch = "rematch"            // money released from suspense to a loan
	KindAssign  = recon.SuspenseAssign // a person assigns a suspense item
	// KindConflict is a sighting whose identity was seen with another
	// amount, currency or direction: no money moves (the money was booked
	// once), a review item is parked for a person.
	KindConflict = "conflict"
	// KindDismiss closes a review item (a person checked the conflict).
	KindDismiss = recon.SuspenseDismiss
	// KindUnassign asks the loan's partition to take back what an
	// assignment booked; it answers with KindRepark to suspense.
	KindUnassign = recon.SuspenseUnassign
	// KindRepark puts money taken back from a loan into suspense again.
	KindRepark = "repark"
)

// Routed is the Router's output, re-keyed by loan ("suspense" when none).
type Routed struct {
	Kind        string                `json:"kind"`
	Key         string                `json:"key"`
	Transaction recon.BankTransaction `json:"transaction"`
	LoanID      string                `json:"loan_id,omitempty"`
	// BorrowerID: money to a borrower's virtual IBAN naming none of their
	// loans, for the Poster to allocate across them.
	BorrowerID string          `json:"borrower_id,omitempty"`
	Rule       string          `json:"rule"`
	Confidence decimal.Decimal `json:"confidence"`
	Evidence   string          `json:"evidence,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	// Amount to allocate for rematch and split assignments.
	Amount      *decimal.Decimal `json:"amount,omitempty"`
	Note        string           `json:"note,omitempty"`
	Actor       string           `json:"actor,omitempty"`
	Allocations []Allocation     `json:"allocations,omitempty"`
	// ItemID names the suspense item for assign, dismiss and unassign
	// when it is not the transaction id (review items).
	ItemID string `json:"item_id,omitempty"`
	// Round counts the assignments of one suspense item (0 for the
	// first), so entries of a re-assignment get ids of their own.
	Round int `json:"round,omitempty"`
}

// Allocation is one share of a suspense item assigned to a loan; its JSON
// is recon.Allocation's (what the API publishes).
type Allocation struct {
	LoanID string          `json:"loan_id"`
	Amount decimal.Decimal `json:"amount"`
}

// Seen is what the Router remembers of a movement: enough to tell a
// redelivery from a conflicting sighting, and to recognise later sightings
// of it (identity.go). It is the dedup changelog's value, keyed by ID.
type Seen struct {
	ID        string          `json:"-"`
	Amount    decimal.Decimal `json:"amount"`
	Currency  string          `json:"currency"`
	Direction recon.Direction `json:"direction"`
	// Refs are the movement's reference keys (hashed, scoped by account
	// and direction), from all its sightings.
	Refs []string `json:"refs,omitempty"`
	// BankRef is the bank's account servicer reference, once seen.
	BankRef string `json:"bank_ref,omitempty"`
	// Unreferenced: the first sighting carried no strong reference.
	Unreferenced bool `json:"unreferenced,omitempty"`
	// Account, Date, Counterparty and VirtualIBAN link sightings without a shared
	// reference (identity.go).
	Account      string     `json:"account,omitempty"`
	Date         recon.Date `json:"date,omitempty"`
	Counterparty string     `json:"counterparty,omitempty"`
	VirtualIBAN  string     `json:"virtual_iban,omitempty"`
	// Channels that sighted the movement (file message ids, sources).
	Channels []string `json:"channels,omitempty"`
}

// Router deduplicates bank transactions by identity key and runs the
// matching cascade. It owns the identity keys of its input partitions.
type Router struct {
	loans *Loans
	// kv holds the movements by id and indexes them by reference key and
	// by fingerprint (identity.go): what grows with history is on disk in
	// the service. recent caches the movements read last, a bounded number.
	kv     KV
	recent seenCache
	newest int64 // the newest date indexed, days since 1970
	// Threshold is the confidence below which a match is parked.
	Threshold decimal.Decimal
	// OwnAccounts are the lender's own IBANs (normalized: upper case, no
	// spaces): a transfer whose counterparty is one of them moves money
	// between the lender's accounts and books to transit:own-accounts.
	OwnAccounts map[string]bool
	// LoanReference is the lender's loan reference format: a token of a
	// remittance text is taken for a loan reference only when it matches
	// it whole (compile it anchored, ^(?:...)$), so that a short number
	// in a payer's text ("facture 42") never names loan 42. Nil: any token
	// that is a known loan id names it. Creditor references are
	// structured and not subject to it.
	LoanReference *regexp.Regexp
}

// NewRouter returns a Router over the shared loans table.
func NewRouter(loans *Loans) *Router {
	r := &Router{loans: loans, Threshold: decimal.RequireFromString("0.75")}
	r.Open(NewMemKV())
	return r
}

// Route decides one sighting and remembers what it learnt. It returns the
// decision for this sighting; when the Poster must act, the routed record;
// and when the movement is new or gained references, the movement to
// write to the dedup changelog (keyed by its ID).
func (r *Router) Route(t recon.BankTransaction) (recon.Decision, *Routed, *Seen) {
	d := recon.Decision{TransactionID: t.ID, Amount: t.Amount, Currency: t.Currency, Direction: t.Direction, BookingDate: t.BookingDate}
	if t.Status != "" && t.Status != recon.Booked {
		d.Outcome, d.Rule, d.Reason = recon.NotBooked, RuleStatus, "status "+string(t.Status)+": posts when the booked sighting arrives"
		return d, nil, nil
	}
	keys, strong := refKeys(t)
	id, how, several := r.identify(t, keys)
	if len(several) > 0 {
		d.Rule, d.Confidence = RuleIdentityAmbiguous, decimal.Zero
		d.Reason = "references shared with several movements (" + strings.Join(several, ", ") + "); this sighting is not posted"
		return d, r.review(t, d), nil
	}
	if id != "" {
		prev, _ := r.movement(id)
		if prev.Amount.Equal(t.Amount) && prev.Currency == t.Currency && prev.Direction == t.Direction {
			d.Outcome, d.Rule, d.Reason = recon.Duplicate, RuleIdentity, "already booked under this identity"
			if id != t.ID {
				d.Evidence = "movement " + id + " (" + how + ")"
			}
			return d, nil, r.link(id, t, keys)
		}
		d.Rule, d.Confidence = RuleIdentityConflict, decimal.Zero
		d.Reason = "same identity seen before as " + prev.Direction.String() + " " + prev.Amount.String() + " " + prev.Currency + "; this sighting is not posted"
		if id != t.ID {
			d.Evidence = "movement " + id + " (" + how + ")"
		}
		return d, r.review(t, d), nil
	}
	rt := r.cascade(t)
	d.Rule, d.Confidence, d.Evidence, d.LoanID = rt.Rule, rt.Confidence, rt.Evidence, rt.LoanID
	seen := newSeen(t, keys, strong)
	r.Remember(t.ID, seen)
	return d, rt, &seen
}

// review parks a sighting that books no money for a person to check.
func (r *Router) review(t recon.BankTransaction, d recon.Decision) *Routed {
	item := t
	item.CounterpartyName, item.CounterpartyIBAN = "", ""
	return &Routed{Kind: KindConflict, Key: suspenseKey, Transaction: item, Rule: d.Rule, Reason: d.Reason, Evidence: d.Evidence,
		ItemID: ConflictID(t)}
}

// Rules: what decided where money went, as decisions and entries name it.
const (
	RuleIdentity          = "identity"           // a sighting of a movement already booked
	RuleIdentityConflict  = "identity-conflict"  // shares a reference with another amount
	RuleIdentityAmbiguous = "identity-ambiguous" // shares references with several movements
	RuleStatus            = "status"             // not booked (pending, info)
	RulePostingKey        = "posting-key"        // the poster's own guard against a second posting
	RuleBankCharge        = "bank-charge"
	RuleRemainder         = "remainder"
	RuleOwnAccount        = "own-account"
	RuleDisbursement      = "disbursement"
	RuleVirtualIBAN       = "virtual_iban"
	RuleMandate           = "mandate_id"
	RuleCreditorReference = "creditor_reference"
	RuleRemittanceText    = "remittance_text"
	RuleNone              = "none"                   // nothing matched: suspense
	RuleManual            = recon.RuleManual         // a person assigned or dismissed
	RuleManualUnassign    = recon.RuleManualUnassign // a person took an assignment back
)

// ConflictID names the review item of a conflicting sighting: the same
// conflicting sighting seen twice is one item.
func ConflictID(t recon.BankTransaction) string { return recon.ConflictID(t) }

// Confidences of the cascade's rules.
var (
	conf1    = decimal.New(100, -2)
	conf095  = decimal.New(95, -2)
	conf09   = decimal.New(90, -2)
	conf08   = decimal.New(80, -2)
	confNone = decimal.Zero
)

// The cascade, in order of confidence. Each rule names its evidence.
func (r *Router) cascade(t recon.BankTransaction) *Routed {
	rt := &Routed{Kind: KindMatch, Transaction: t}
	match := func(loanID, rule, evidence string, conf decimal.Decimal) *Routed {
		rt.LoanID, rt.Key, rt.Rule, rt.Evidence, rt.Confidence = loanID, r.loans.PartitionKey(loanID), rule, evidence, conf
		if conf.LessThan(r.Threshold) {
			rt.LoanID, rt.Key, rt.Reason = "", suspenseKey, "confidence below threshold"
		}
		return rt
	}
	park := func(rule, reason string, conf decimal.Decimal) *Routed {
		rt.Key, rt.Rule, rt.Reason, rt.Confidence = suspenseKey, rule, reason, conf
		return rt
	}
	if IsCharge(t) {
		rt.Evidence = "charge record"
		return park(RuleBankCharge, "", conf1)
	}
	if t.Remainder {
		return park(RuleRemainder, "entry details do not add up to the booked amount", confNone)
	}
	if cp := t.CounterpartyIBAN; cp != "" && len(r.OwnAccounts) > 0 && r.OwnAccounts[normIBAN(cp)] {
		rt.Evidence = "counterparty is the lender's own account"
		return park(RuleOwnAccount, "", conf1)
	}
	if t.Direction == recon.Debit && t.EndToEndID != "" && !t.Reversal && t.ReturnReason == "" {
		if off, ok := r.loans.find(keyDisb, t.EndToEndID); ok {
			return match(r.loans.key(off, keyID), RuleDisbursement, "disbursement end-to-end id "+t.EndToEndID, conf1)
		}
	}
	if t.VirtualIBAN != "" {
		if ids := r.loans.Claimants(t.VirtualIBAN); len(ids) > 0 {
			return park(RuleVirtualIBAN, "virtual IBAN claimed by several loans ("+strings.Join(ids, ", ")+"): a person assigns; fix the loans", confNone)
		}
		if off, ok := r.loans.find(keyVIBAN, normIBAN(t.VirtualIBAN)); ok {
			return match(r.loans.key(off, keyID), RuleVirtualIBAN, "virtual IBAN "+t.VirtualIBAN, conf1)
		}
		if bid, ok := r.loans.BorrowerByVIBAN(t.VirtualIBAN); ok {
			if id, how := r.namedLoanOf(bid, t); id != "" {
				return match(id, RuleVirtualIBAN, "virtual IBAN of borrower "+bid+"; "+how+" names loan "+id, conf1)
			}
			rt.BorrowerID, rt.Key, rt.Rule, rt.Confidence = bid, BorrowerKey(bid), RuleVirtualIBAN, conf1
			rt.Evidence = "virtual IBAN of borrower " + bid + " (no loan named: allocated across their loans)"
			return rt
		}
	}
	if t.MandateID != "" {
		if off, ok := r.loans.find(keyMandate, t.MandateID); ok {
			return match(r.loans.key(off, keyID), RuleMandate, "mandate "+t.MandateID, conf095)
		}
	}
	if ref := t.CreditorReference; ref != "" {
		if id, ok := r.loanIn(ref); ok {
			return match(id, RuleCreditorReference, "creditor reference "+ref, conf09)
		}
	}
	if t.RemittanceInfo != "" {
		switch ids := r.loansMentioned(t.RemittanceInfo); len(ids) {
		case 0:
		case 1:
			return match(ids[0], RuleRemittanceText, "remittance mentions "+ids[0], conf08)
		default:
			return park(RuleRemittanceText, "several loans mentioned ("+strings.Join(ids, ", ")+")", confNone)
		}
	}
	reason := "no rule matched a known loan"
	if t.VirtualIBAN != "" {
		reason = "virtual IBAN not (yet) assigned to a loan; re-matched when the loan arrives"
	}
	return park(RuleNone, reason, confNone)
}

// namedLoanOf finds the one loan of a borrower that a payment's creditor
// reference or remittance text names.
func (r *Router) namedLoanOf(bid string, t recon.BankTransaction) (id, how string) {
	mine := r.loans.LoansOf(bid)
	if ref := t.CreditorReference; ref != "" {
		if id, ok := r.loanIn(ref); ok && slices.Contains(mine, id) {
			return id, "creditor reference"
		}
	}
	if t.RemittanceInfo != "" {
		var named []string
		for _, id := range r.loansMentioned(t.RemittanceInfo) {
			if slices.Contains(mine, id) {
				named = append(named, id)
			}
		}
		if len(named) == 1 {
			return named[0], "remittance text"
		}
	}
	return "", ""
}

// IsCharge reports whether t is a bank fee or charge: a charge record, or
// a bank transaction code whose family or sub-family is CHRG
// (e.g. ACMT/MDOP/CHRG, PMNT/CHRG/...).
func IsCharge(t recon.BankTransaction) bool {
	if t.IsCharge {
		return true
	}
	for code := t.BankTxCode; code != ""; {
		part, rest, _ := strings.Cut(code, "/")
		if strings.EqualFold(part, "CHRG") {
			return true
		}
		code = rest
	}
	return false
}

// loanIn finds a loan id inside a structured creditor reference (RFxx<id>).
func (r *Router) loanIn(ref string) (string, bool) {
	ref = strings.ToUpper(strings.ReplaceAll(ref, " ", ""))
	if len(ref) > 4 && strings.HasPrefix(ref, "RF") {
		if _, ok := r.loans.find(keyID, ref[4:]); ok {
			return ref[4:], true
		}
	}
	_, ok := r.loans.find(keyID, ref)
	return ref, ok
}

// maxMentions bounds the tokens of a remittance text looked up.
const maxMentions = 64

// loansMentioned lists the distinct known loan ids that appear as tokens
// of a remittance text ("loan number L-123", "ref. pret L-123"), wherever
// they stand, and match LoanReference when it is set. Tokens are split on anything but letters, digits, '-', '_'
// and '/'; trailing punctuation is dropped.
func (r *Router) loansMentioned(text string) []string {
	var ids []string
	n := 0
	for tok := range strings.FieldsFuncSeq(text, func(c rune) bool {
		return !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/')
	}) {
		if n++; n > maxMentions {
			break
		}
		tok = strings.Trim(tok, "-_/")
		if len(tok) < 2 || len(tok) > MaxLoanIDBytes {
			continue
		}
		if r.LoanReference != nil && !r.LoanReference.MatchString(tok) {
			continue
		}
		off, ok := r.loans.find(keyID, tok)
		if !ok {
			if up := strings.ToUpper(tok); up != tok {
				off, ok = r.loans.find(keyID, up)
			}
		}
		if !ok {
			continue
		}
		id := r.loans.key(off, keyID)
		dup := false
		for _, x := range ids {
			dup = dup || x == id
		}
		if !dup {
			ids = append(ids, id)
		}
	}
	return ids
}

const suspenseKey = "suspense"
