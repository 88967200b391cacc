// Package recon is the vocabulary every component shares: money, bank
// transactions, statements, loans, ledger entries, match decisions, alerts
// and dead letters. It does no I/O; components depend on it and talk to each
// other only through the Kafka topics named in package schemas.
package recon

import (
	"fmt"
	"regexp"
	"time"

	"github.com/shopspring/decimal"
)

// Direction says whether money came into (credit) or left (debit) the
// lender's bank account.
type Direction string

const (
	Credit Direction = "credit"
	Debit  Direction = "debit"
)

// Status of a bank movement as the bank reports it. Only booked movements
// are posted to the ledger.
type Status string

const (
	Booked  Status = "booked"
	Pending Status = "pending"
	Info    Status = "info"
)

// Record types, the value of every record's "type" field.
const (
	TypeTransaction = "transaction"
	TypeStatement   = "statement"
	TypeStatus      = "status"
	TypeReturn      = "return"
	TypeExpected    = "expected"
)

// Date is a calendar date, "YYYY-MM-DD". Dates sort as strings.
type Date string

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// Valid reports whether d is an existing calendar date.
func (d Date) Valid() bool {
	if !dateRE.MatchString(string(d)) {
		return false
	}
	_, err := time.Parse(time.DateOnly, string(d))
	return err == nil
}

// BankTransaction is one movement of money on the lender's bank account, as
// seen by one source (a webhook, a camt.054, a camt.052, a camt.053, a
// producer). ID is the identity key derived from bank references, the same
// for every sighting of the same money; ProducerID is the sender's own id,
// kept as given.
type BankTransaction struct {
	Type              string           `json:"type"`
	ID                string           `json:"id"`
	ProducerID        string           `json:"producer_id,omitempty"`
	Source            string           `json:"source"`
	MessageID         string           `json:"message_id,omitempty"`
	AccountIBAN       string           `json:"account_iban"`
	VirtualIBAN       string           `json:"virtual_iban,omitempty"`
	Direction         Direction        `json:"direction"`
	Amount            decimal.Decimal  `json:"amount"`
	Currency          string           `json:"currency"`
	Status            Status           `json:"status"`
	BookingDate       Date             `json:"booking_date,omitempty"`
	ValueDate         Date             `json:"value_date,omitempty"`
	EndToEndID        string           `json:"end_to_end_id,omitempty"`
	TransactionID     string           `json:"transaction_id,omitempty"`
	MandateID         string           `json:"mandate_id,omitempty"`
	CreditorReference string           `json:"creditor_reference,omitempty"`
	RemittanceInfo    string           `json:"remittance_info,omitempty"`
	BankReference     string           `json:"bank_reference,omitempty"`
	EntryReference    string           `json:"entry_reference,omitempty"`
	EntryAmount       *decimal.Decimal `json:"entry_amount,omitempty"`
	CounterpartyName  string           `json:"counterparty_name,omitempty"`
	CounterpartyIBAN  string           `json:"counterparty_iban,omitempty"`
	CounterpartyBIC   string           `json:"counterparty_bic,omitempty"`
	BankTxCode        string           `json:"bank_tx_code,omitempty"`
	Reversal          bool             `json:"reversal,omitempty"`
	ReturnReason      string           `json:"return_reason,omitempty"`
	InstructedAmount  *Money           `json:"instructed_amount,omitempty"`
	Charges           *Money           `json:"charges,omitempty"`
	Remainder         bool             `json:"remainder,omitempty"`
	IsCharge          bool             `json:"charge,omitempty"`
}

// Money is an exact amount with its currency.
type Money struct {
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
}

func (m Money) String() string { return m.Amount.StringFixed(2) + " " + m.Currency }

// Statement is one camt.052 report, camt.053 statement or camt.054
// notification: its balances and whether the bank's own arithmetic holds.
type Statement struct {
	Type                string          `json:"type"`
	ID                  string          `json:"id"`
	Source              string          `json:"source"`
	MessageID           string          `json:"message_id"`
	AccountIBAN         string          `json:"account_iban"`
	SequenceNumber      string          `json:"sequence_number,omitempty"`
	LegalSequenceNumber string          `json:"legal_sequence_number,omitempty"`
	CreatedAt           string          `json:"created_at,omitempty"`
	FromDate            Date            `json:"from_date,omitempty"`
	ToDate              Date            `json:"to_date,omitempty"`
	Currency            string          `json:"currency,omitempty"`
	OpeningBalance      *Signed         `json:"opening_balance,omitempty"`
	ClosingBalance      *Signed         `json:"closing_balance,omitempty"`
	ClosingDate         Date            `json:"closing_date,omitempty"`
	BookedEntries       int             `json:"booked_entries"`
	BookedCredits       decimal.Decimal `json:"booked_credits"`
	BookedDebits        decimal.Decimal `json:"booked_debits"`
	BalanceCheck        string          `json:"balance_check"` // ok | mismatch | n/a
	// FileSHA256 is the digest of the file the statement came in, so the
	// same file sent twice is recognised.
	FileSHA256 string `json:"file_sha256,omitempty"`
}

// Date is the date a statement speaks for (and is proved at): its to_date,
// else the date of its closing balance.
func (st Statement) Date() Date {
	if st.ToDate != "" {
		return st.ToDate
	}
	return st.ClosingDate
}

// From is the first date a statement covers: its from_date, else Date.
func (st Statement) From() Date {
	if st.FromDate != "" {
		return st.FromDate
	}
	return st.Date()
}

// Signed is a balance that may be negative; JSON carries it as a string.
type Signed = decimal.Decimal

// StatusReport is one pain.002/pacs.002 status for an original payment.
type StatusReport struct {
	Type                  string `json:"type"`
	Source                string `json:"source"`
	MessageID             string `json:"message_id"`
	OriginalMessageID     string `json:"original_message_id,omitempty"`
	OriginalPaymentInfoID string `json:"original_payment_info_id,omitempty"`
	OriginalEndToEndID    string `json:"original_end_to_end_id,omitempty"`
	Status                string `json:"status"`
	Reason                string `json:"reason,omitempty"`
	Level                 string `json:"level"` // group | payment_info | transaction
}

// Return is one pacs.004 returned transaction.
type Return struct {
	Type               string          `json:"type"`
	ID                 string          `json:"id"`
	Source             string          `json:"source"`
	MessageID          string          `json:"message_id"`
	OriginalEndToEndID string          `json:"original_end_to_end_id,omitempty"`
	ReturnedAmount     decimal.Decimal `json:"returned_amount"`
	Currency           string          `json:"currency"`
	ReasonCode         string          `json:"reason_code,omitempty"`
	SettlementDate     Date            `json:"settlement_date,omitempty"`
}

// Loan is what the lender registers: who owes what, and the virtual IBAN its
// borrower pays to.
type Loan struct {
	LoanID      string          `json:"loan_id"`
	VirtualIBAN string          `json:"virtual_iban"`
	Currency    string          `json:"currency"`
	Principal   decimal.Decimal `json:"principal"`
	Schedule    []Instalment    `json:"schedule,omitempty"`
	MandateID   string          `json:"mandate_id,omitempty"`
	// MandateSignedOn is the date the borrower signed the SEPA direct-debit
	// mandate; a collection (pain.008) must carry it.
	MandateSignedOn Date `json:"mandate_signed_on,omitempty"`
	// DisbursementEndToEndID is the end-to-end id of the transfer that
	// pays the loan out; the matcher books that outgoing transfer as
	// principal receivable.
	DisbursementEndToEndID string    `json:"disbursement_end_to_end_id,omitempty"`
	Borrower               *Borrower `json:"borrower,omitempty"`
	// BorrowerID names the borrower (POST /v1/borrowers) whose virtual IBAN
	// serves this loan with the borrower's other loans; such a loan needs
	// no virtual IBAN of its own. It is set when the loan is created and
	// never changes (the loan's postings live with its borrower's).
	BorrowerID string `json:"borrower_id,omitempty"`
}

// Instalment is one due date of a loan's schedule.
type Instalment struct {
	DueDate   Date            `json:"due_date"`
	Principal decimal.Decimal `json:"principal"`
	Interest  decimal.Decimal `json:"interest"`
	Fees      decimal.Decimal `json:"fees"`
}

// Audit records a change to what recon holds that a person asked for (a
// loan's terms amended, a virtual IBAN re-assigned): who, why, from when,
// and the terms before and after, without personal data. It is kept on the
// audit topic for ever.
type Audit struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	Subject       string    `json:"subject"`
	Before        *Loan     `json:"before,omitempty"`
	After         *Loan     `json:"after,omitempty"`
	Reason        string    `json:"reason"`
	Actor         string    `json:"actor"`
	EffectiveDate Date      `json:"effective_date"`
	At            time.Time `json:"at"`
}

// Kinds of audit records.
const AuditLoanAmended = "loan-amended"

// Borrower is a lender's client: one virtual IBAN for all their loans. On
// a loan it carries only the personal data (name, IBAN), which never
// enters the hash-chained journal; the journal names a borrower by ID.
type Borrower struct {
	ID          string `json:"borrower_id,omitempty"`
	Name        string `json:"name,omitempty"`
	VirtualIBAN string `json:"virtual_iban,omitempty"`
	IBAN        string `json:"iban,omitempty"`
}

// ExpectedKind says which way an expected payment goes.
type ExpectedKind string

const (
	// Collection is a SEPA direct debit of one instalment (pain.008): money in.
	Collection ExpectedKind = "collection"
	// Disbursement is the transfer of a loan to its borrower (pain.001):
	// money out.
	Disbursement ExpectedKind = "disbursement"
)

// ExpectedStatus is where an expected payment stands.
type ExpectedStatus string

const (
	// ExpectedOpen: instructed, no settlement seen yet.
	ExpectedOpen ExpectedStatus = "expected"
	// ExpectedOverdue: still no settlement after its window: alert-worthy.
	ExpectedOverdue ExpectedStatus = "overdue"
	// ExpectedRejected: refused before settlement (pain.002 RJCT); a
	// collection's instalment stays due.
	ExpectedRejected ExpectedStatus = "rejected"
	// ExpectedSettled: booked on the lender's account.
	ExpectedSettled ExpectedStatus = "settled"
	// ExpectedReturned: settled, then returned or refunded (MD06, AM04,
	// MS02, ...): a collection's instalment is due again.
	ExpectedReturned ExpectedStatus = "returned"
)

// Expected is a payment recon instructed the bank to make — one SEPA
// direct-debit collection of one instalment, or one disbursement — keyed
// by its end-to-end id, and where it stands. It carries no personal data
// (no borrower name or IBAN).
type Expected struct {
	Type          string          `json:"type"`
	ID            string          `json:"id"` // the end-to-end id
	Kind          ExpectedKind    `json:"kind"`
	LoanID        string          `json:"loan_id"`
	DueDate       Date            `json:"due_date,omitempty"` // the instalment's
	Amount        decimal.Decimal `json:"amount"`
	Currency      string          `json:"currency"`
	MandateID     string          `json:"mandate_id,omitempty"`
	MandateSigned Date            `json:"mandate_signed_on,omitempty"`
	SequenceType  string          `json:"sequence_type,omitempty"` // FRST | RCUR | OOFF | FNAL
	Scheme        string          `json:"scheme,omitempty"`        // CORE | B2B | SCT | INST
	RequestedDate Date            `json:"requested_date"`
	WindowDays    int             `json:"window_days"`
	MessageID     string          `json:"message_id,omitempty"`
	PaymentInfoID string          `json:"payment_info_id,omitempty"`
	AccountIBAN   string          `json:"account_iban,omitempty"` // the lender's account
	Status        ExpectedStatus  `json:"status"`
	Reason        string          `json:"reason,omitempty"`
	// SettledBy is the bank transaction id (or status report) that settled it.
	SettledBy string `json:"settled_by,omitempty"`
	StatusOn  Date   `json:"status_on,omitempty"` // when the status was last changed
}

// Outcome is where a bank transaction ends: exactly one of these.
type Outcome string

const (
	Posted    Outcome = "posted"
	Suspense  Outcome = "suspense"
	Rejected  Outcome = "rejected"
	Duplicate Outcome = "duplicate" // a later sighting of money already decided
	// NotBooked is a pending or informational sighting: nothing is posted
	// until the booked sighting of the same money arrives.
	NotBooked Outcome = "not_booked"
)

// Decision is the matcher's verdict on one bank transaction, with the rule
// that decided it and the evidence, so every match can be explained.
type Decision struct {
	TransactionID string          `json:"transaction_id"`
	Outcome       Outcome         `json:"outcome"`
	LoanID        string          `json:"loan_id,omitempty"`
	Rule          string          `json:"rule"`
	Confidence    decimal.Decimal `json:"confidence"`
	Evidence      string          `json:"evidence,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	Amount        decimal.Decimal `json:"amount"`
	Currency      string          `json:"currency"`
	Direction     Direction       `json:"direction"`
	BookingDate   Date            `json:"booking_date,omitempty"`
	DecidedAt     time.Time       `json:"decided_at"`
	EntryIDs      []string        `json:"entry_ids,omitempty"`
}

// Side of a posting.
type Side string

const (
	DebitSide  Side = "debit"
	CreditSide Side = "credit"
)

// Posting moves a positive amount to one side of one account.
type Posting struct {
	Account  string          `json:"account"`
	Side     Side            `json:"side"`
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
}

// Entry is one balanced journal entry. ID is derived from the bank identity
// (the posting key), so a redelivery rewrites the same entry. PrevHash and
// Hash chain the entries of one journal partition.
type Entry struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	LoanID        string    `json:"loan_id,omitempty"`
	TransactionID string    `json:"transaction_id,omitempty"`
	EffectiveDate Date      `json:"effective_date,omitempty"`
	BookedAt      time.Time `json:"booked_at"`
	Postings      []Posting `json:"postings"`
	Note          string    `json:"note,omitempty"`
	// Actor is who asked for a manual entry (suspense assignment).
	Actor string `json:"actor,omitempty"`
	// EndToEndID of the bank transaction, so a return finds its original.
	EndToEndID string `json:"end_to_end_id,omitempty"`
	// Reverses is the transaction id whose entries this one reverses.
	Reverses string `json:"reverses,omitempty"`
	// Item is the parked transaction of a suspense entry, without personal
	// data, so it can be re-matched after a restart.
	Item *BankTransaction `json:"item,omitempty"`
	// Round numbers the assignments of one suspense item (0 the first), so
	// a re-assignment after an unassignment books entries of its own.
	Round int `json:"round,omitempty"`
	// BorrowerID is the borrower whose payment this entry allocates (to one
	// of their loans, or to their credit).
	BorrowerID string `json:"borrower_id,omitempty"`
	Sequence   int64  `json:"sequence"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
}

// Balanced reports whether debits equal credits in every currency, the
// first invariant of the ledger.
func (e Entry) Balanced() error {
	sums := map[string]decimal.Decimal{}
	for _, p := range e.Postings {
		if !p.Amount.IsPositive() {
			return fmt.Errorf("entry %s: posting to %s has non-positive amount %s", e.ID, p.Account, p.Amount)
		}
		switch p.Side {
		case DebitSide:
			sums[p.Currency] = sums[p.Currency].Add(p.Amount)
		case CreditSide:
			sums[p.Currency] = sums[p.Currency].Sub(p.Amount)
		default:
			return fmt.Errorf("entry %s: posting to %s has side %q", e.ID, p.Account, p.Side)
		}
	}
	for cur, s := range sums {
		if !s.IsZero() {
			return fmt.Errorf("entry %s: %s debits and credits differ by %s", e.ID, cur, s)
		}
	}
	return nil
}

// Alert is one edge of an alert rule: it started to hold (firing) or stopped
// (resolved).
type Alert struct {
	ID        string          `json:"id"`
	Rule      string          `json:"rule"`
	Kind      string          `json:"kind"`
	State     string          `json:"state"` // firing | resolved
	Subject   string          `json:"subject"`
	Value     decimal.Decimal `json:"value"`
	Threshold decimal.Decimal `json:"threshold"`
	Currency  string          `json:"currency,omitempty"`
	At        time.Time       `json:"at"`
	Message   string          `json:"message"`
	// Expected is the expected payment an expected_overdue alert is about,
	// as published when it turned overdue; nil for the other kinds.
	Expected *Expected `json:"expected,omitempty"`
}

// Break is the outcome of one statement proof: a bank statement's figure
// compared with what recon holds. Type "proof" compares the closing balance
// with the ledger's balance of the bank account at the statement's date;
// type "chain" compares the opening balance with the previous statement's
// closing balance. ID is "<statement id>/<type>": a later evaluation of the
// same statement (incomplete, then ok) carries the same id, the latest wins.
type Break struct {
	Type        string `json:"type"` // proof | chain
	ID          string `json:"id"`
	StatementID string `json:"statement_id"`
	// PreviousStatementID is the statement a chain break follows.
	PreviousStatementID string `json:"previous_statement_id,omitempty"`
	AccountIBAN         string `json:"account_iban"`
	Date                Date   `json:"date"`
	Currency            string `json:"currency"`
	// Expected is the statement's figure (closing balance for a proof,
	// opening balance for a chain); Ledger what it is compared with (the
	// ledger's balance, or the previous closing balance); Difference is
	// Expected - Ledger.
	Expected   decimal.Decimal `json:"expected"`
	Ledger     decimal.Decimal `json:"ledger"`
	Difference decimal.Decimal `json:"difference"`
	Status     string          `json:"status"` // ok | break | incomplete
	Reason     string          `json:"reason,omitempty"`
	// Transactions is the number of booked transactions of the statement;
	// Missing how many of them the ledger had not booked when evaluated.
	Transactions int       `json:"transactions"`
	Missing      int       `json:"missing,omitempty"`
	At           time.Time `json:"at"`
}

// Break types and statuses.
const (
	BreakProof      = "proof"
	BreakChain      = "chain"
	BreakOK         = "ok"
	BreakBroken     = "break"
	BreakIncomplete = "incomplete"
)

// DeadLetter keeps input that could not be processed: its raw bytes, where
// it came from, and why it was refused.
type DeadLetter struct {
	ID     string    `json:"id"`
	Source string    `json:"source"`
	Where  string    `json:"where,omitempty"`
	Reason string    `json:"reason"`
	Raw    []byte    `json:"raw"`
	At     time.Time `json:"at"`
	// Size and SHA256 describe the whole input. An input too large for a
	// Kafka record keeps only its first bytes in Raw (Truncated), and the
	// whole of it in Spooled, a file under recon's data directory.
	Size      int64  `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Spooled   string `json:"spooled,omitempty"`
}

func (d Direction) String() string { return string(d) }
