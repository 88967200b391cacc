// Package schemas is recon's contract with the outside: topic names, Kafka
// key and header conventions (the CloudEvents Kafka binding), event types and
// their versions. It holds names and rules only; no I/O.
package schemas

// Topics. Every name carries its major version: an incompatible change gets
// a new topic, a compatible one (new optional fields) keeps the name.
const (
	// TopicLoans is compacted, keyed by loan_id; every matcher instance reads
	// it whole (a global table).
	TopicLoans = "recon.loans.v1"
	// TopicBorrowers is compacted, keyed by borrower_id: a borrower's
	// virtual IBAN, which serves all their loans. Read whole by every
	// matcher, like the loans.
	TopicBorrowers = "recon.borrowers.v1"
	// TopicAudit keeps, for ever, the changes people asked for (a loan's
	// terms amended, a virtual IBAN re-assigned), keyed by their subject.
	TopicAudit = "recon.audit.v1"
	// TopicBankTransactions carries normalized bank transactions, returns and
	// status reports, keyed by the transaction's identity key, so every
	// sighting of the same money meets in one partition.
	TopicBankTransactions = "recon.bank-transactions.v1"
	// TopicStatements carries one record per camt.052/053/054, keyed by the
	// account IBAN.
	TopicStatements = "recon.statements.v1"
	// TopicRouted is the matcher's internal repartition topic: deduplicated
	// transactions re-keyed by loan_id (or "suspense").
	TopicRouted = "recon.matcher-routed.v1"
	// TopicDedupChangelog is the matcher's compacted changelog of identity
	// keys seen, keyed by identity key; it restores dedup state on restart.
	TopicDedupChangelog = "recon.matcher-dedup-changelog.v1"
	// TopicMatches carries one match decision per bank transaction sighting,
	// keyed by transaction id.
	TopicMatches = "recon.matches.v1"
	// TopicLedgerEntries is the journal, the book of record: keyed by loan_id
	// (or "suspense"), retention unlimited, hash-chained per partition.
	TopicLedgerEntries = "recon.ledger-entries.v1"
	// TopicAlerts carries alert edges (firing, resolved), keyed by alert id.
	TopicAlerts = "recon.alerts.v1"
	// TopicExpected carries expected payments (SEPA collections and
	// disbursements recon instructed) and every change of their status,
	// keyed by end-to-end id; compacted, so it is also the table of their
	// latest state.
	TopicExpected = "recon.expected.v1"
	// TopicReconciliation carries statement proofs (recon.Break: a camt.053
	// closing balance against the ledger, and statement chaining), keyed by
	// account IBAN.
	TopicReconciliation = "recon.reconciliation.v1"
	// TopicAlertsState is the alerts component's state, compacted: the
	// input offsets its engine has seen, the engine's per-rule state, the
	// webhook deliveries (pending and recently finished), the endpoints a
	// 410 disabled and the recent alerts, each under its own key prefixed
	// by the alerts instance ("<instance>/offset/<topic>/<partition>",
	// "<instance>/rule/<rule>", ".../edge/<rule>/<subject>",
	// ".../unpaid/<rule>/<subject>", ".../seen/<rule>/<slot>",
	// ".../delivery/<alert id>/<endpoint>", ".../gone/<endpoint>",
	// ".../recent/<slot>"; see package alerts), written in the same
	// transaction as the alerts it accompanies. Restoring reads it whole:
	// its size is bounded by live keys, not by history.
	TopicAlertsState = "recon.alerts-state.v1"
	// TopicDeadLetters keeps refused input with its raw bytes and reason,
	// keyed by the source's id for the input.
	TopicDeadLetters = "recon.dead-letters.v1"
)

// Topic describes how a topic is created.
type Topic struct {
	Name      string
	Compacted bool
	// RetainForever is for the book of record (accounting records are kept
	// ten years): retention.ms=-1.
	RetainForever bool
}

// Topics lists every topic recon creates at start-up.
var Topics = []Topic{
	{Name: TopicLoans, Compacted: true, RetainForever: true},
	{Name: TopicBorrowers, Compacted: true, RetainForever: true},
	{Name: TopicAudit, RetainForever: true},
	{Name: TopicBankTransactions, RetainForever: true},
	{Name: TopicStatements, RetainForever: true},
	{Name: TopicRouted},
	{Name: TopicDedupChangelog, Compacted: true, RetainForever: true},
	{Name: TopicMatches, RetainForever: true},
	{Name: TopicLedgerEntries, RetainForever: true},
	{Name: TopicAlerts, RetainForever: true},
	{Name: TopicAlertsState, Compacted: true, RetainForever: true},
	{Name: TopicDeadLetters, RetainForever: true},
	{Name: TopicExpected, Compacted: true, RetainForever: true},
	{Name: TopicReconciliation, RetainForever: true},
}

// CloudEvents Kafka binding (binary content mode) header names.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderType        = "ce_type"
	HeaderSource      = "ce_source"
	HeaderTime        = "ce_time"
	HeaderContentType = "content-type"
	ContentTypeJSON   = "application/json"
	SpecVersion       = "1.0"
)

// Event types (ce_type). The suffix is the payload's schema version.
const (
	TypeLoan            = "dev.recon.loan.v1"
	TypeBorrower        = "dev.recon.borrower.v1"
	TypeAudit           = "dev.recon.audit.v1"
	TypeBankTransaction = "dev.recon.bank-transaction.v1"
	TypeReturn          = "dev.recon.return.v1"
	TypeStatusReport    = "dev.recon.status-report.v1"
	TypeStatement       = "dev.recon.statement.v1"
	TypeRouted          = "dev.recon.routed-transaction.v1"
	TypeDecision        = "dev.recon.match-decision.v1"
	TypeEntry           = "dev.recon.ledger-entry.v1"
	TypeAlert           = "dev.recon.alert.v1"
	TypeAlertsState     = "dev.recon.alerts-state.v1"
	TypeDeadLetter      = "dev.recon.dead-letter.v1"
	TypeBreak           = "dev.recon.reconciliation-break.v1"
	TypeExpected        = "dev.recon.expected-payment.v1"
)

// SuspenseKey is the journal key of entries that belong to no loan.
const SuspenseKey = "suspense"

// BorrowerKey is how a borrower is named where loans are: the key of the
// routed records and journal entries of a borrower's loans, and a virtual
// IBAN's claimant. "borrower/<id>".
func BorrowerKey(id string) string { return "borrower/" + id }
