package collect

import (
	"fmt"
	"sort"
	"time"

	"github.com/reconhq/recon"
)

// Tracker follows expected payments. It is pure: Observe takes one record
// (a recon.Expected to follow, a booked recon.BankTransaction, a
// recon.StatusReport, a recon.Return) and returns the items whose status
// changed; Overdue takes the day. Status only moves up the order
// expected < overdue < rejected < settled < returned, and between two facts
// of the same rank the smaller (reason, by) wins, so the result does not
// depend on the order records arrive in. A fact about an item not known yet
// (a return read before its collection was published) waits, bounded by
// MaxPending, and is applied when the item arrives.
type Tracker struct {
	// MaxItems bounds the items followed; past it the oldest settled,
	// rejected or returned items are forgotten. Default 1000000.
	MaxItems int
	// MaxPending bounds facts waiting for their item; past it the oldest
	// are dropped (counted in Dropped). Default 100000.
	MaxPending int
	Dropped    int

	items        map[string]*recon.Expected
	byMsg        map[string][]string
	byPmtInf     map[string][]string
	pending      map[string][]fact // "e2e:", "msg:", "pmt:" + id
	pendingOrder []string
	npending     int
}

type fact struct {
	status recon.ExpectedStatus
	reason string
	by     string
	on     recon.Date
	// msg restricts a payment-info-level fact to one message.
	msg string
	// txn is a booking waiting for its item: its fact depends on the item.
	txn *recon.BankTransaction
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{items: map[string]*recon.Expected{}, byMsg: map[string][]string{},
		byPmtInf: map[string][]string{}, pending: map[string][]fact{}}
}

var rank = map[recon.ExpectedStatus]int{
	recon.ExpectedOpen: 0, recon.ExpectedOverdue: 1, recon.ExpectedRejected: 2,
	recon.ExpectedSettled: 3, recon.ExpectedReturned: 4,
}

// Get returns the item with end-to-end id id.
func (t *Tracker) Get(id string) (recon.Expected, bool) {
	it, ok := t.items[id]
	if !ok {
		return recon.Expected{}, false
	}
	return *it, true
}

// Len is the number of items followed.
func (t *Tracker) Len() int { return len(t.items) }

// Observe applies one record and returns the items whose status changed,
// sorted by id. Records of other types, and transactions that are not
// booked or carry no end-to-end id, change nothing.
func (t *Tracker) Observe(rec any) []recon.Expected {
	switch r := rec.(type) {
	case recon.Expected:
		return t.follow(r)
	case recon.BankTransaction:
		return t.transaction(r)
	case recon.StatusReport:
		if r.Status != "RJCT" {
			return nil
		}
		f := fact{status: recon.ExpectedRejected, reason: reasonOr(r.Reason, "RJCT"), by: "status:" + r.MessageID}
		switch r.Level {
		case "group":
			return t.apply("msg:"+r.OriginalMessageID, f)
		case "payment_info":
			f.msg = r.OriginalMessageID
			return t.apply("pmt:"+r.OriginalPaymentInfoID, f)
		default:
			return t.apply("e2e:"+r.OriginalEndToEndID, f)
		}
	case recon.Return:
		return t.apply("e2e:"+r.OriginalEndToEndID, fact{status: recon.ExpectedReturned,
			reason: reasonOr(r.ReasonCode, "returned"), by: "return:" + r.ID, on: r.SettlementDate})
	}
	return nil
}

func reasonOr(r, def string) string {
	if r == "" {
		return def
	}
	return r
}

// transaction: a booking with the item's end-to-end id in the item's
// direction settles it; one the other way (or flagged as a reversal or
// return) returns it.
func (t *Tracker) transaction(b recon.BankTransaction) []recon.Expected {
	if b.Status != recon.Booked || b.EndToEndID == "" || b.IsCharge || b.Remainder {
		return nil
	}
	key := "e2e:" + b.EndToEndID
	if it, ok := t.items[b.EndToEndID]; ok {
		return t.apply(key, transactionFact(*it, b))
	}
	// The item is not known yet: keep both readings, the item picks.
	t.wait(key, fact{txn: &b})
	return nil
}

func transactionFact(it recon.Expected, b recon.BankTransaction) fact {
	in := recon.Credit
	if it.Kind == recon.Disbursement {
		in = recon.Debit
	}
	if b.Direction != in || b.Reversal || b.ReturnReason != "" {
		return fact{status: recon.ExpectedReturned, reason: reasonOr(b.ReturnReason, "reversal"), by: b.ID, on: b.BookingDate}
	}
	f := fact{status: recon.ExpectedSettled, by: b.ID, on: b.BookingDate}
	if !b.Amount.Equal(it.Amount) || (b.Currency != "" && b.Currency != it.Currency) {
		f.reason = fmt.Sprintf("booked %s %s, expected %s %s", b.Amount.StringFixed(2), b.Currency, it.Amount.StringFixed(2), it.Currency)
	}
	return f
}

// follow starts following an item, or merges a later state of it.
func (t *Tracker) follow(e recon.Expected) []recon.Expected {
	if e.ID == "" {
		return nil
	}
	if e.Status == "" {
		e.Status = recon.ExpectedOpen
	}
	if cur, ok := t.items[e.ID]; ok {
		if better(fact{status: e.Status, reason: e.Reason, by: e.SettledBy}, *cur) {
			*cur = e
		}
		return nil
	}
	t.items[e.ID] = &e
	if e.MessageID != "" {
		t.byMsg[e.MessageID] = append(t.byMsg[e.MessageID], e.ID)
	}
	if e.PaymentInfoID != "" {
		t.byPmtInf[e.PaymentInfoID] = append(t.byPmtInf[e.PaymentInfoID], e.ID)
	}
	before := e
	for _, key := range []string{"e2e:" + e.ID, "msg:" + e.MessageID, "pmt:" + e.PaymentInfoID} {
		for _, f := range t.pending[key] {
			if f.txn != nil {
				f = transactionFact(e, *f.txn)
			}
			t.set(e.ID, f)
		}
	}
	t.evict()
	if after := *t.items[e.ID]; after.Status != before.Status || after.Reason != before.Reason {
		return []recon.Expected{after}
	}
	return nil
}

// apply a fact to the items key names, or keep it until they arrive.
func (t *Tracker) apply(key string, f fact) []recon.Expected {
	ids := t.targets(key, f)
	if len(ids) == 0 || key[:4] != "e2e:" {
		// A message or payment-information fact also covers items of it
		// that are not known yet: keep it for them.
		t.wait(key, f)
	}
	var out []recon.Expected
	for _, id := range ids {
		if t.set(id, f) {
			out = append(out, *t.items[id])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (t *Tracker) targets(key string, f fact) []string {
	switch key[:4] {
	case "e2e:":
		if _, ok := t.items[key[4:]]; ok {
			return []string{key[4:]}
		}
	case "msg:":
		return t.byMsg[key[4:]]
	case "pmt:":
		var ids []string
		for _, id := range t.byPmtInf[key[4:]] {
			if f.msg == "" || t.items[id].MessageID == f.msg {
				ids = append(ids, id)
			}
		}
		return ids
	}
	return nil
}

// set applies f to item id and reports whether it changed.
func (t *Tracker) set(id string, f fact) bool {
	it := t.items[id]
	if it == nil || !better(f, *it) {
		return false
	}
	it.Status, it.Reason, it.SettledBy = f.status, f.reason, f.by
	if f.on != "" {
		it.StatusOn = f.on
	}
	return true
}

// better reports whether fact f should replace the state of it.
func better(f fact, it recon.Expected) bool {
	rf, ri := rank[f.status], rank[it.Status]
	if rf != ri {
		return rf > ri
	}
	if f.reason != it.Reason {
		return f.reason < it.Reason
	}
	return f.by < it.SettledBy
}

func (t *Tracker) wait(key string, f fact) {
	max := t.MaxPending
	if max <= 0 {
		max = 100_000
	}
	for t.npending >= max && len(t.pendingOrder) > 0 {
		old := t.pendingOrder[0]
		t.pendingOrder = t.pendingOrder[1:]
		t.npending -= len(t.pending[old])
		t.Dropped += len(t.pending[old])
		delete(t.pending, old)
	}
	if _, ok := t.pending[key]; !ok {
		t.pendingOrder = append(t.pendingOrder, key)
	}
	t.pending[key] = append(t.pending[key], f)
	t.npending++
}

// Overdue marks every item still expected after its window — requested
// date + WindowDays before today — overdue, and returns them sorted by id.
func (t *Tracker) Overdue(today recon.Date) []recon.Expected {
	now, ok := parseDate(today)
	if !ok {
		return nil
	}
	var out []recon.Expected
	for id, it := range t.items {
		if it.Status != recon.ExpectedOpen {
			continue
		}
		req, ok := parseDate(it.RequestedDate)
		if !ok || !now.After(req.AddDate(0, 0, it.WindowDays)) {
			continue
		}
		f := fact{status: recon.ExpectedOverdue, on: today,
			reason: fmt.Sprintf("no settlement %d days after the requested date %s", it.WindowDays, it.RequestedDate)}
		if t.set(id, f) {
			out = append(out, *it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// evict forgets the oldest finished items once there are more than MaxItems.
func (t *Tracker) evict() {
	max := t.MaxItems
	if max <= 0 {
		max = 1_000_000
	}
	if len(t.items) <= max {
		return
	}
	var done []*recon.Expected
	for _, it := range t.items {
		if rank[it.Status] >= rank[recon.ExpectedRejected] {
			done = append(done, it)
		}
	}
	sort.Slice(done, func(i, j int) bool {
		if done[i].StatusOn != done[j].StatusOn {
			return done[i].StatusOn < done[j].StatusOn
		}
		return done[i].ID < done[j].ID
	})
	for _, it := range done[:min(len(done), len(t.items)-max*9/10)] {
		delete(t.items, it.ID)
		t.byMsg[it.MessageID] = remove(t.byMsg[it.MessageID], it.ID)
		t.byPmtInf[it.PaymentInfoID] = remove(t.byPmtInf[it.PaymentInfoID], it.ID)
	}
}

func remove(ids []string, id string) []string {
	out := ids[:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// Today is the calendar day of now in UTC, the day Overdue takes.
func Today(now time.Time) recon.Date { return dateOf(now.UTC()) }
