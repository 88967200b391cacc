package matcher

// The Poster's state in its KV. Memory holds the hot path only: the
// running totals of each loan and the credit of each borrower (loaded from
// the KV on first use, then kept), the open suspense items with the index
// of returns among them, the loans holding borrower credit, and the
// chain's head. What grows with history (booked transaction ids, past
// allocations, end-to-end ids, outgoing transfers, released items, rounds)
// is only in the KV and read when a record needs it. Hot state is written
// through to the KV whenever it changes, so Open rebuilds the Poster from
// the KV alone, and a replay of the journal's tail after the KV's head
// brings it up to date.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/reconhq/recon/ledger"
)

// Key layout. A key is one lowercase letter saying what it is about, then
// the ids it is about; two ids are separated by "\x00". Keys that do not
// start with a lowercase ASCII letter are free for the caller (the
// service's offsets). Values are binary (encoding/binary varints, strings
// prefixed by their length): they are written on every posting, and
// integers in minor units keep them a few bytes long. Suspense items are
// JSON: they carry a whole bank transaction, are written only when money
// is parked or released, and JSON keeps them readable when a person opens
// the store.
//
//	key                     value                          memory
//	v                       storeFormat                    checked by Open
//	h                       head: sequence, hash           Head
//	l<loan>                 running totals (loanState)     loaded on first use
//	o<loan>                 "" (the loan holds credit)     scanned by Open
//	b<borrower>             borrower credit                loaded on first use
//	i<item>                 open suspense item (JSON)      scanned by Open
//	p<txn>                  "" (booked here)               -
//	r<loan>\0<txn>          what txn allocated (alloc)     -
//	e<loan>\0<e2e>          txn of the credit booked       -
//	d<loan>\0<e2e>          outgoing transfer booked       -
//	c<borrower>\0<txn>      borrower credit txn booked     -
//	a<borrower>\0<e2e>      txn of the payment booked      -
//	x<txn>                  item released (JSON)           -
//	n<txn>\0<loan>          rounds of rematch booked       -
//	k<entry>                "" (repark booked)             -
const (
	keyVersion        = "v"
	keyHead           = "h"
	prefixLoan        = "l"
	prefixCredited    = "o"
	prefixBorrower    = "b"
	prefixItem        = "i"
	prefixPosted      = "p"
	prefixRepayment   = "r"
	prefixLoanE2E     = "e"
	prefixDebit       = "d"
	prefixBorrowerTxn = "c"
	prefixBorrowerE2E = "a"
	prefixReleased    = "x"
	prefixRounds      = "n"
	prefixReparked    = "k"
)

// storeFormat names the key layout and value encodings above; a store
// written in another format is not read.
const storeFormat = "poster/1"

// ErrStore is a store the Poster cannot read: another format, or a value
// that does not decode. The partition is rebuilt from its journal.
var ErrStore = errors.New("matcher: store unreadable")

func key2(prefix, a, b string) string { return prefix + a + "\x00" + b }

// Open makes kv the Poster's store and rebuilds its hot state from it:
// the head, the open suspense items and the loans holding credit. Loans
// and borrowers are loaded when first used. An empty kv is a Poster that
// has booked nothing. After Open, the journal entries after Head.Sequence
// (and only those) are replayed with Restore.
func (p *Poster) Open(kv KV) error {
	*p = Poster{loans: p.loans, router: p.router, Allocation: p.Allocation, kv: kv, state: map[string]*loanState{},
		items: map[string]*Item{}, returns: map[string][]string{}, credited: map[string]bool{}, borrowers: map[string]*borrowerState{},
		currencies: map[string]string{}}
	v, ok := kv.Get(keyVersion)
	_, booked := kv.Get(keyHead)
	switch {
	case !ok && booked:
		return fmt.Errorf("%w: key %q missing", ErrStore, keyVersion)
	case !ok:
		kv.Set(keyVersion, []byte(storeFormat))
	case string(v) != storeFormat:
		return fmt.Errorf("%w: format %q, want %q", ErrStore, v, storeFormat)
	}
	if v, ok := kv.Get(keyHead); ok {
		r := reader{b: v}
		p.Head = ledger.Head{Sequence: r.int(), Hash: r.str()}
		p.check(keyHead, &r)
	}
	kv.Scan(prefixItem, func(k string, v []byte) bool {
		it := &Item{}
		if err := json.Unmarshal(v, it); err != nil {
			p.fail(k, err.Error())
			return false
		}
		p.items[it.ID] = it
		p.indexReturn(it)
		return true
	})
	// Everything open may be re-matched on the first Rematch, as after a
	// replay of the whole journal.
	p.fresh = p.itemIDs()
	kv.Scan(prefixCredited, func(k string, _ []byte) bool {
		p.credited[strings.TrimPrefix(k, prefixCredited)] = true
		return true
	})
	return p.Err()
}

// Err is the first failure of the Poster's store: the KV's own, or a value
// that did not decode. Decisions taken since may rest on state read as
// empty: the caller checks Err before it commits what Post, Rematch and
// Restore produced, and on an error aborts and rebuilds the partition.
func (p *Poster) Err() error {
	if p.err != nil {
		return p.err
	}
	return p.kv.Err()
}

func (p *Poster) fail(key, why string) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: key %q: %s", ErrStore, key, why)
	}
}

// check records a value that did not decode exactly; false then.
func (p *Poster) check(key string, r *reader) bool {
	if r.bad || len(r.b) > 0 {
		p.fail(key, "malformed value")
		return false
	}
	return true
}

func (p *Poster) setHead(h ledger.Head) {
	p.Head = h
	p.kv.Set(keyHead, writer(nil).int(h.Sequence).str(h.Hash))
}

// --- loans ---------------------------------------------------------------

// loan is the running totals of a loan: in memory once used, else read
// from the store, else new.
func (p *Poster) loan(id string) *loanState {
	s := p.state[id]
	if s == nil {
		id = strings.Clone(id)
		s = &loanState{}
		if v, ok := p.kv.Get(prefixLoan + id); ok {
			r := reader{b: v}
			flags := r.uint()
			s.inexact = flags&1 != 0
			s.currency = p.intern(r.str())
			for part := range s.paid {
				s.paid[part] = r.int()
			}
			s.credit, s.disbursed, s.creditRuns = r.int(), r.int(), int(r.int())
			p.check(prefixLoan+id, &r)
		}
		p.state[id] = s
	}
	return s
}

func (p *Poster) saveLoan(id string, s *loanState) {
	var flags uint64
	if s.inexact {
		flags |= 1
	}
	w := writer(make([]byte, 0, 24+len(s.currency))).uint(flags).str(s.currency)
	for _, v := range s.paid {
		w = w.int(v)
	}
	p.kv.Set(prefixLoan+id, w.int(s.credit).int(s.disbursed).int(int64(s.creditRuns)))
	switch held := s.credit > 0; {
	case held && !p.credited[id]:
		p.credited[strings.Clone(id)] = true
		p.kv.Set(prefixCredited+id, nil)
	case !held && p.credited[id]:
		delete(p.credited, id)
		p.kv.Delete(prefixCredited + id)
	}
}

// creditedLoans are the loans holding borrower credit, in id order.
func (p *Poster) creditedLoans() []string {
	ids := make([]string, 0, len(p.credited))
	for id := range p.credited {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// repayment is what transaction txnID allocated on a loan.
func (p *Poster) repayment(loanID, txnID string) (alloc, bool) {
	k := key2(prefixRepayment, loanID, txnID)
	v, ok := p.kv.Get(k)
	if !ok {
		return alloc{}, false
	}
	r := reader{b: v}
	var a alloc
	a.total = r.int()
	for part := range a.parts {
		a.parts[part] = r.int()
	}
	a.credit, a.round = r.int(), int(r.int())
	flags := r.uint()
	a.rematch, a.reversed = flags&1 != 0, flags&2 != 0
	a.e2e = r.str()
	return a, p.check(k, &r)
}

func (p *Poster) setRepayment(loanID, txnID string, a alloc) {
	var flags uint64
	if a.rematch {
		flags |= 1
	}
	if a.reversed {
		flags |= 2
	}
	w := writer(make([]byte, 0, 32+len(a.e2e))).int(a.total)
	for _, v := range a.parts {
		w = w.int(v)
	}
	p.kv.Set(key2(prefixRepayment, loanID, txnID), w.int(a.credit).int(int64(a.round)).uint(flags).str(a.e2e))
}

// creditByE2E is the transaction of the credit booked on a loan with
// end-to-end id e2e.
func (p *Poster) creditByE2E(loanID, e2e string) (string, bool) {
	if e2e == "" {
		return "", false
	}
	v, ok := p.kv.Get(key2(prefixLoanE2E, loanID, e2e))
	return string(v), ok
}

// debit is the outgoing transfer booked on a loan with end-to-end id e2e.
func (p *Poster) debit(loanID, e2e string) (outgoing, bool) {
	if e2e == "" {
		return outgoing{}, false
	}
	k := key2(prefixDebit, loanID, e2e)
	v, ok := p.kv.Get(k)
	if !ok {
		return outgoing{}, false
	}
	r := reader{b: v}
	out := outgoing{txnID: r.str(), kind: r.str(), account: r.str(), amount: r.int()}
	return out, p.check(k, &r)
}

func (p *Poster) setDebit(loanID, e2e string, out outgoing) {
	w := writer(make([]byte, 0, 16+len(out.txnID)+len(out.kind)+len(out.account)))
	p.kv.Set(key2(prefixDebit, loanID, e2e), w.str(out.txnID).str(out.kind).str(out.account).int(out.amount))
}

// --- borrowers -----------------------------------------------------------

func (p *Poster) borrower(id string) *borrowerState {
	b := p.borrowers[id]
	if b == nil {
		b = &borrowerState{}
		if v, ok := p.kv.Get(prefixBorrower + id); ok {
			r := reader{b: v}
			b.credit = r.int()
			p.check(prefixBorrower+id, &r)
		}
		p.borrowers[strings.Clone(id)] = b
	}
	return b
}

// borrowerTxnCredit is the borrower credit transaction txnID booked (less
// what returns took back).
func (p *Poster) borrowerTxnCredit(bid, txnID string) int64 {
	k := key2(prefixBorrowerTxn, bid, txnID)
	v, ok := p.kv.Get(k)
	if !ok {
		return 0
	}
	r := reader{b: v}
	c := r.int()
	p.check(k, &r)
	return c
}

func (p *Poster) addBorrowerTxnCredit(bid, txnID string, delta int64) {
	c := p.borrowerTxnCredit(bid, txnID) + delta
	p.kv.Set(key2(prefixBorrowerTxn, bid, txnID), writer(nil).int(c))
}

// --- suspense ------------------------------------------------------------

func (p *Poster) openItem(it *Item) {
	p.items[it.ID] = it
	p.indexReturn(it)
	p.saveItem(it)
}

func (p *Poster) saveItem(it *Item) {
	v, err := json.Marshal(it)
	if err != nil {
		panic("matcher: encode item " + it.ID + ": " + err.Error())
	}
	p.kv.Set(prefixItem+it.ID, v)
}

func (p *Poster) closeItem(id string) {
	it := p.items[id]
	if it == nil {
		return
	}
	delete(p.items, id)
	p.kv.Delete(prefixItem + id)
	if e2e, ok := returnE2E(it); ok {
		ids := p.returns[e2e]
		rest := make([]string, 0, len(ids))
		for _, x := range ids {
			if x != id {
				rest = append(rest, x)
			}
		}
		if len(rest) == 0 {
			delete(p.returns, e2e)
		} else {
			p.returns[e2e] = rest
		}
	}
}

// indexReturn remembers an open outgoing return or reversal by the
// end-to-end id of the payment it undoes, so a repayment finds the return
// waiting for it without scanning suspense.
func (p *Poster) indexReturn(it *Item) {
	if e2e, ok := returnE2E(it); ok {
		p.returns[e2e] = append(p.returns[e2e], it.ID)
	}
}

func returnE2E(it *Item) (string, bool) {
	t := it.Transaction
	return t.EndToEndID, it.Kind == ItemMoney && t.EndToEndID != "" && t.Direction == "debit" && (t.ReturnReason != "" || t.Reversal)
}

// waitingReturns are the open items returning the payment with end-to-end
// id e2e, in id order.
func (p *Poster) waitingReturns(e2e string) []string {
	ids := append([]string(nil), p.returns[e2e]...)
	sort.Strings(ids)
	return ids
}

// released is the item released to a loan as transaction txnID.
func (p *Poster) released(txnID string) (*Item, bool) {
	v, ok := p.kv.Get(prefixReleased + txnID)
	if !ok {
		return nil, false
	}
	it := &Item{}
	if err := json.Unmarshal(v, it); err != nil {
		p.fail(prefixReleased+txnID, err.Error())
		return nil, false
	}
	return it, true
}

func (p *Poster) rounds(txnID, loanID string) int {
	k := key2(prefixRounds, txnID, loanID)
	v, ok := p.kv.Get(k)
	if !ok {
		return 0
	}
	r := reader{b: v}
	n := int(r.int())
	p.check(k, &r)
	return n
}

// maxCurrencies bounds the currencies a Poster keeps one copy of.
const maxCurrencies = 64

func (p *Poster) intern(c string) string {
	if v, ok := p.currencies[c]; ok {
		return v
	}
	if len(p.currencies) >= maxCurrencies {
		return c
	}
	c = strings.Clone(c)
	p.currencies[c] = c
	return c
}

// --- encoding ------------------------------------------------------------

// writer appends varints and length-prefixed strings.
type writer []byte

func (w writer) int(v int64) writer   { return binary.AppendVarint(w, v) }
func (w writer) uint(v uint64) writer { return binary.AppendUvarint(w, v) }
func (w writer) str(s string) writer  { return append(binary.AppendUvarint(w, uint64(len(s))), s...) }

// reader reads what writer wrote; bad says it did not.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
