package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

// Alert states.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Event is what the engine observes; exactly one of the types below.
type Event interface{ event() }

// BalanceChanged: the balance of an account (the bank account, a loan, the
// suspense account) is now Balance.
type BalanceChanged struct {
	Account  string
	Currency string
	Balance  decimal.Decimal
}

// TransactionSeen: a bank transaction was seen (any sighting; the engine
// reports one transaction id once).
type TransactionSeen struct {
	ID        string
	Account   string // the lender's bank account
	Direction recon.Direction
	Amount    decimal.Decimal
	Currency  string
}

// SuspenseState: what sits in suspense now. Oldest is zero when it is
// empty.
type SuspenseState struct {
	Total    decimal.Decimal
	Currency string
	Count    int
	Oldest   time.Time
}

// DirectDebitSeen: a direct-debit collection was made, or one came back.
type DirectDebitSeen struct {
	ID     string
	Return bool
}

// StatementReceived: a statement (camt.053, or camt.052) for Account dated
// Date arrived. Check is the statement's own arithmetic ("ok", "mismatch",
// "n/a"); Opening/Closing, when known, let the engine check that it chains
// on from the previous statement.
type StatementReceived struct {
	Account  string
	Date     recon.Date
	Currency string
	Check    string
	Opening  *decimal.Decimal
	Closing  *decimal.Decimal
}

// InstalmentStatus: what is still owed on one instalment. Outstanding zero
// means paid.
type InstalmentStatus struct {
	LoanID      string
	DueDate     recon.Date
	Outstanding decimal.Decimal
	Currency    string
}

// ExpectedChanged: an expected payment recon instructed (a direct-debit
// collection or a disbursement, from the expected-payments tracker) has a
// new status; the same record may be delivered again.
type ExpectedChanged struct {
	Expected recon.Expected
}

func (BalanceChanged) event()    {}
func (TransactionSeen) event()   {}
func (SuspenseState) event()     {}
func (DirectDebitSeen) event()   {}
func (StatementReceived) event() {}
func (InstalmentStatus) event()  {}
func (ExpectedChanged) event()   {}

// Limits on engine state.
const (
	maxSeen         = 10000   // ids remembered by large_credit and expected_overdue
	maxInstalments  = 2000000 // unpaid instalments tracked per rule
	maxSubjectBytes = 200
	returnBuckets   = 60 // return_rate window resolution: window/60
)

// Engine turns events into alert edges. It is pure: no clock, no I/O, no
// randomness; the same events at the same times give the same alerts with
// the same ids. It is not safe for concurrent use (Service serializes).
type Engine struct {
	rules []*rule
	st    engineState
	all   bool // changes returns every key, not only what changed
}

// engineState is what State/Restore persist, per rule name.
type engineState struct {
	Version int                   `json:"version"`
	Rules   map[string]*ruleState `json:"rules"`
}

type ruleState struct {
	Edges map[string]*edge `json:"edges,omitempty"` // by subject
	// suspense_age
	Oldest time.Time `json:"oldest,omitzero"`
	// large_credit, expected_overdue: recent transaction or expected-payment
	// ids that fired, a ring whose oldest is at SeenNext
	Seen     []string `json:"seen,omitempty"`
	SeenNext int      `json:"seen_next,omitempty"`
	// return_rate: counts per bucket index (time / (window/60))
	Buckets map[int64]*bucket `json:"buckets,omitempty"`
	// statement_missing/break: last statement per account
	Statements map[string]*stmtMark `json:"statements,omitempty"`
	// instalment_overdue: unpaid instalments by subject
	Unpaid  map[string]*unpaid `json:"unpaid,omitempty"`
	Dropped int64              `json:"dropped,omitempty"`

	seen map[string]bool
	// what changed since the last Changes: the rule's own fields, edges
	// and unpaid instalments by subject, seen ids by ring slot
	dirty       bool
	dirtyEdges  map[string]bool
	dirtyUnpaid map[string]bool
	dirtySeen   map[int]bool
}

// touch marks the rule's own fields (not edges, unpaid, seen) changed.
func (rs *ruleState) touch() { rs.dirty = true }

func (rs *ruleState) touchEdge(subject string) {
	if rs.dirtyEdges == nil {
		rs.dirtyEdges = map[string]bool{}
	}
	rs.dirtyEdges[subject] = true
}

func (rs *ruleState) touchUnpaid(subject string) {
	if rs.dirtyUnpaid == nil {
		rs.dirtyUnpaid = map[string]bool{}
	}
	rs.dirtyUnpaid[subject] = true
}

func (rs *ruleState) touchSeen(slot int) {
	if rs.dirtySeen == nil {
		rs.dirtySeen = map[int]bool{}
	}
	rs.dirtySeen[slot] = true
	rs.dirty = true // SeenNext
}

type edge struct {
	Firing bool      `json:"firing"`
	Seq    uint64    `json:"seq"`
	Since  time.Time `json:"since"`
}

type bucket struct {
	Collections int64 `json:"c"`
	Returns     int64 `json:"r"`
}

type stmtMark struct {
	Date    recon.Date       `json:"date"`
	Closing *decimal.Decimal `json:"closing,omitempty"`
}

type unpaid struct {
	LoanID      string          `json:"loan_id"`
	DueDate     recon.Date      `json:"due_date"`
	Outstanding decimal.Decimal `json:"outstanding"`
	Currency    string          `json:"currency"`
}

// NewEngine builds an engine for a validated config.
func NewEngine(cfg Config) (*Engine, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	return newEngine(c), nil
}

func newEngine(c *compiled) *Engine {
	e := &Engine{rules: c.rules, st: engineState{Version: 1, Rules: map[string]*ruleState{}}}
	for _, r := range c.rules {
		e.st.Rules[r.Name] = &ruleState{}
	}
	return e
}

// State returns the engine's state as JSON, for the caller to persist.
func (e *Engine) State() []byte {
	b, err := json.Marshal(e.st)
	if err != nil {
		panic(fmt.Sprintf("alerts: engine state does not marshal: %v", err)) // a bug
	}
	return b
}

// Restore replaces the engine's state with one from State. State of rules
// no longer configured is dropped; new rules start empty. A restored engine
// does not re-fire what was firing.
func (e *Engine) Restore(b []byte) error {
	var st engineState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("alerts: restore engine state: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("alerts: restore engine state: version %d, want 1", st.Version)
	}
	next := map[string]*ruleState{}
	for _, r := range e.rules {
		rs := st.Rules[r.Name]
		if rs == nil {
			rs = &ruleState{}
		}
		next[r.Name] = rs
	}
	e.st.Rules = next
	e.all = true // what was restored is written out whole by the next changes
	return nil
}

// adopt carries state over from the engine a reload replaces.
func (e *Engine) adopt(old *Engine) {
	for _, r := range e.rules {
		if rs := old.st.Rules[r.Name]; rs != nil {
			e.st.Rules[r.Name] = rs
		}
	}
}

// Observe feeds one event at time now and returns the edges it causes.
func (e *Engine) Observe(now time.Time, ev Event) []recon.Alert {
	var out []recon.Alert
	for _, r := range e.rules {
		out = e.observe(out, r, e.st.Rules[r.Name], now, ev)
	}
	return out
}

// Tick evaluates the time-based rules (suspense_age, return_rate,
// statement_missing, instalment_overdue) at now.
func (e *Engine) Tick(now time.Time) []recon.Alert {
	var out []recon.Alert
	for _, r := range e.rules {
		out = e.tick(out, r, e.st.Rules[r.Name], now)
	}
	return out
}

// transition applies one evaluation to a subject: fire when cond starts to
// hold, resolve when clear starts to hold (clear is !cond widened by the
// hysteresis). It appends the edge, if any, to out.
// msg, when not nil, builds the message only for an edge (formatting
// decimals on every event is most of the engine's cost).
func transition(out []recon.Alert, r *rule, rs *ruleState, subject string, cond, clear bool, a recon.Alert, msg func() string) []recon.Alert {
	if rs.Edges == nil {
		rs.Edges = map[string]*edge{}
	}
	ed := rs.Edges[subject]
	if ed == nil {
		if !cond {
			return out
		}
		ed = &edge{}
		rs.Edges[subject] = ed
	}
	switch {
	case !ed.Firing && cond:
		a.State = StateFiring
	case ed.Firing && clear:
		a.State = StateResolved
	default:
		return out
	}
	ed.Firing = a.State == StateFiring
	ed.Seq++
	ed.Since = a.At
	rs.touchEdge(subject)
	a.ID = alertID(r.Name, subject, ed.Seq)
	a.Rule = r.Name
	a.Kind = string(r.Kind)
	a.Subject = subject
	if a.Currency == "" {
		a.Currency = r.Currency
	}
	if msg != nil {
		a.Message = msg()
	}
	if a.Message == "" {
		a.Message = fmt.Sprintf("%s %s", r.Kind, subject)
	}
	a.Message = a.State + ": " + a.Message
	return append(out, a)
}

// alertID is "<rule>-<hash of subject>-<edge number>": deterministic, so
// a replay yields the same ids, and free of the subject itself (an IBAN)
// because ids travel in URLs and headers.
func alertID(ruleName, subject string, seq uint64) string {
	h := sha256.Sum256([]byte(ruleName + "\x00" + subject))
	return fmt.Sprintf("%s-%s-%d", ruleName, hex.EncodeToString(h[:6]), seq)
}

// Firing returns the number of subjects currently firing, per rule.
func (e *Engine) Firing() map[string]int {
	n := map[string]int{}
	for name, rs := range e.st.Rules {
		for _, ed := range rs.Edges {
			if ed.Firing {
				n[name]++
			}
		}
	}
	return n
}
