package proofs

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/projection"
)

// Limits bound the Tracker's memory. Zero values take the defaults.
type Limits struct {
	// MaxPending statements waiting to be proved (default 10,000); beyond
	// it the oldest is dropped unproved.
	MaxPending int
	// MaxTransactions booked camt.053 transaction records remembered by
	// message (default 1,000,000); beyond it the oldest message is
	// forgotten (its statement then stays incomplete).
	MaxTransactions int
	// MaxPosted transaction ids whose bank movement is remembered (default
	// 1,000,000), oldest forgotten first.
	MaxPosted int
	// MaxDays dates per bank account and currency (default 40,000: a
	// century); a journal entry on a new date beyond it is counted in
	// Dropped and not in balances.
	MaxDays int
	// MaxEmitted break ids remembered to avoid re-emitting on replay
	// (default 1,000,000).
	MaxEmitted int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxPending, 10_000)
	def(&l.MaxTransactions, 1_000_000)
	def(&l.MaxPosted, 1_000_000)
	def(&l.MaxDays, 40_000)
	def(&l.MaxEmitted, 1_000_000)
	return l
}

// Tracker is the proofs' state: per bank account and currency the anchor,
// the ledger movement by date and the latest statement (for the chain);
// recent statement transactions and posted transactions; statements
// pending; and the status last emitted per break id. It is fed records in
// any order and is pure: no clock, no I/O.
type Tracker struct {
	lim      Limits
	accounts map[string]*account // by "bank:<IBAN> <currency>"

	msgs     map[string]map[string]decimal.Decimal // "<message id>\x00<IBAN>" -> transaction id -> signed amount
	msgOrder []string
	nTxns    int

	posted      map[string]*posted
	postedOrder []string // a ring of ids, oldest at postedNext
	postedNext  int

	pending []*pending
	ids     map[string]bool // statement ids pending
	emitted map[string]string

	// Dropped counts what a limit made the tracker forget.
	Dropped int64
}

type account struct {
	anchor *Anchor
	days   Days
	last   *Mark
}

type posted struct {
	entries  []string
	movement decimal.Decimal
}

type pending struct {
	st        recon.Statement
	published time.Time
}

// NewTracker returns an empty tracker.
func NewTracker(lim Limits) *Tracker {
	return &Tracker{lim: lim.withDefaults(), accounts: map[string]*account{}, msgs: map[string]map[string]decimal.Decimal{},
		posted: map[string]*posted{}, ids: map[string]bool{}, emitted: map[string]string{}}
}

func (t *Tracker) account(key string) *account {
	a := t.accounts[key]
	if a == nil {
		a = &account{days: Days{}}
		t.accounts[key] = a
	}
	return a
}

func accountKey(ledgerAccount, currency string) string { return ledgerAccount + " " + currency }

func msgKey(messageID, iban string) string { return messageID + "\x00" + strings.ToUpper(iban) }

// Emitted records a break already published (read back from the
// reconciliation topic on start, or just produced).
func (t *Tracker) Emitted(b recon.Break) {
	if _, ok := t.emitted[b.ID]; !ok && len(t.emitted) >= t.lim.MaxEmitted {
		t.Dropped++
		return
	}
	t.emitted[b.ID] = b.Status
}

// Transaction remembers a booked camt.053 transaction record under its
// message; other records are ignored.
func (t *Tracker) Transaction(tx recon.BankTransaction) {
	if tx.Type != recon.TypeTransaction || tx.Status != recon.Booked || tx.MessageID == "" || !strings.HasPrefix(tx.Source, "camt.053") {
		return
	}
	k := msgKey(tx.MessageID, tx.AccountIBAN)
	m := t.msgs[k]
	if m == nil {
		m = map[string]decimal.Decimal{}
		t.msgs[k] = m
		t.msgOrder = append(t.msgOrder, k)
	}
	if _, ok := m[tx.ID]; ok {
		return
	}
	amt := tx.Amount
	if tx.Direction == recon.Debit {
		amt = amt.Neg()
	}
	m[tx.ID] = amt
	t.nTxns++
	for t.nTxns > t.lim.MaxTransactions && len(t.msgOrder) > 1 {
		old := t.msgOrder[0]
		t.msgOrder = t.msgOrder[1:]
		if _, ok := t.msgs[old]; ok && old != k {
			t.dropMessage(old)
			t.Dropped++
		}
	}
}

func (t *Tracker) dropMessage(k string) {
	t.nTxns -= len(t.msgs[k])
	delete(t.msgs, k)
}

// Entry applies a journal entry's movements on bank accounts
// (projection.BankMovements) to their days.
func (t *Tracker) Entry(e recon.Entry) {
	if p := t.posted[e.TransactionID]; p != nil {
		for _, id := range p.entries {
			if id == e.ID {
				return // read twice
			}
		}
	}
	date, moves := projection.BankMovements(e)
	touched := false
	var movement decimal.Decimal
	for _, m := range moves {
		a := t.account(accountKey(m.Account, m.Currency))
		if _, ok := a.days[date]; !ok && len(a.days) >= t.lim.MaxDays {
			t.Dropped++
			continue
		}
		a.days[date] = a.days[date].Add(m.Delta)
		movement = movement.Add(m.Delta)
		touched = true
	}
	if !touched || e.TransactionID == "" {
		return
	}
	p := t.posted[e.TransactionID]
	if p == nil {
		p = &posted{}
		t.posted[e.TransactionID] = p
		t.remember(e.TransactionID)
	}
	p.entries = append(p.entries, e.ID)
	p.movement = p.movement.Add(movement)
}

func (t *Tracker) remember(id string) {
	if len(t.postedOrder) < t.lim.MaxPosted {
		t.postedOrder = append(t.postedOrder, id)
		return
	}
	delete(t.posted, t.postedOrder[t.postedNext])
	t.postedOrder[t.postedNext] = id
	t.postedNext = (t.postedNext + 1) % t.lim.MaxPosted
	t.Dropped++
}

// Statement takes a statement published at instant published. A provable
// statement may set its account's anchor and waits to be proved, unless
// its proof was already emitted with a final status (a replay).
func (t *Tracker) Statement(st recon.Statement, published time.Time) {
	if !Provable(st) || t.ids[st.ID] {
		return
	}
	a := t.account(accountKey(Account(st), st.Currency))
	if a.anchor == nil && st.OpeningBalance != nil {
		a.anchor = &Anchor{Date: st.From(), Balance: *st.OpeningBalance}
	}
	if s := t.emitted[st.ID+"/"+recon.BreakProof]; s == recon.BreakOK || s == recon.BreakBroken {
		a.mark(st)
		t.dropMessage(msgKey(st.MessageID, st.AccountIBAN))
		return
	}
	if len(t.pending) >= t.lim.MaxPending {
		delete(t.ids, t.pending[0].st.ID)
		t.pending = t.pending[1:]
		t.Dropped++
	}
	t.pending = append(t.pending, &pending{st: st, published: published})
	t.ids[st.ID] = true
}

func (a *account) mark(st recon.Statement) {
	if d := st.Date(); a.last == nil || d > a.last.Date {
		a.last = &Mark{StatementID: st.ID, Date: d, Closing: *st.ClosingBalance}
	}
}

// Pending is the number of statements waiting to be proved.
func (t *Tracker) Pending() int { return len(t.pending) }

// Evaluate proves what can be proved at now and returns the breaks to
// publish (those whose status changed since last emitted; the caller calls
// Emitted once they are durable). A statement waits at most timeout after
// it was published before it is reported incomplete, and is dropped
// giveUp after it was published.
func (t *Tracker) Evaluate(now time.Time, timeout, giveUp time.Duration) []recon.Break {
	sort.SliceStable(t.pending, func(i, j int) bool {
		a, b := t.pending[i].st, t.pending[j].st
		if ka, kb := accountKey(Account(a), a.Currency), accountKey(Account(b), b.Currency); ka != kb {
			return ka < kb
		}
		if a.Date() != b.Date() {
			return a.Date() < b.Date()
		}
		return seqLess(a.SequenceNumber, b.SequenceNumber)
	})
	var out []recon.Break
	emit := func(b recon.Break) {
		if t.emitted[b.ID] != b.Status {
			out = append(out, b)
		}
	}
	blocked := map[string]bool{}
	keep := t.pending[:0]
	for _, p := range t.pending {
		st := p.st
		key := accountKey(Account(st), st.Currency)
		if blocked[key] {
			keep = append(keep, p)
			continue
		}
		a := t.account(key)
		b, ok := Prove(now, st, t.facts(st, a), !now.Before(p.published.Add(timeout)))
		if !ok {
			blocked[key] = true // later statements of the account wait for this one
			keep = append(keep, p)
			continue
		}
		if c := Chain(now, a.last, st); c != nil && (c.Status == recon.BreakBroken || t.emitted[c.ID] != "") {
			emit(*c)
		}
		a.mark(st)
		emit(b)
		if b.Status == recon.BreakIncomplete && now.Before(p.published.Add(giveUp)) && a.anchor != nil {
			keep = append(keep, p)
			continue
		}
		delete(t.ids, st.ID)
		t.dropMessage(msgKey(st.MessageID, st.AccountIBAN))
	}
	clear(t.pending[len(keep):])
	t.pending = keep
	t.compactOrder()
	return out
}

// compactOrder drops forgotten messages from the eviction order.
func (t *Tracker) compactOrder() {
	if len(t.msgOrder) <= 2*len(t.msgs)+16 {
		return
	}
	keep := t.msgOrder[:0]
	for _, k := range t.msgOrder {
		if _, ok := t.msgs[k]; ok {
			keep = append(keep, k)
		}
	}
	t.msgOrder = keep
}

func (t *Tracker) facts(st recon.Statement, a *account) Facts {
	txns := t.msgs[msgKey(st.MessageID, st.AccountIBAN)]
	f := Facts{Transactions: txns, Posted: map[string]decimal.Decimal{}, Anchor: a.anchor, Days: a.days}
	for id := range txns {
		if p := t.posted[id]; p != nil {
			f.Posted[id] = p.movement
		}
	}
	return f
}

// seqLess orders sequence numbers numerically when both are numbers.
func seqLess(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}
