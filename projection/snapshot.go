package projection

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// A snapshot is the magic, a gob of the state in a fixed order (the same
// state gives the same bytes) and a CRC-32C of both, so a truncated or
// altered checkpoint is refused rather than trusted. Running balances are
// not written: they are summed again from the points on restore.
const magic = "recon.projection/1\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrSnapshot is a checkpoint that cannot be restored: rebuild the
// projection from the journal.
var ErrSnapshot = errors.New("projection: snapshot unreadable")

type snapshot struct {
	History  bool
	Offsets  []snapOffset
	Entries  int64
	Accounts []snapSeries
	Loans    []snapLoan
	Items    []Item
}

type snapOffset struct {
	Partition int32
	Next      int64
}

type snapSeries struct {
	Account, Currency      string
	Debits, Credits, Total decimal.Decimal
	Points                 []snapPoint
}

type snapPoint struct {
	At    time.Time
	Delta decimal.Decimal
}

type snapLoan struct {
	ID, Currency string
	Paid         [3]decimal.Decimal
	Lent         decimal.Decimal
}

// MarshalBinary is the projection's checkpoint: its whole state and the
// offsets it reflects. Its size grows with the accounts, loans and open
// items (and, with history, the postings), never with closed items or
// entries as such.
func (p *Projection) MarshalBinary() ([]byte, error) {
	s := snapshot{History: p.cfg.History}
	for _, part := range slices.Sorted(maps.Keys(p.offsets)) {
		s.Offsets = append(s.Offsets, snapOffset{part, p.offsets[part]})
	}
	s.Entries = p.entries
	for _, name := range p.book.Accounts() {
		a := p.book.accounts[name]
		for _, cur := range slices.Sorted(maps.Keys(a.byCurrency)) {
			sr := a.byCurrency[cur]
			sr.order()
			ss := snapSeries{Account: name, Currency: cur, Debits: sr.debits, Credits: sr.credits, Total: sr.total}
			for _, pt := range sr.pts {
				ss.Points = append(ss.Points, snapPoint{pt.at, pt.delta})
			}
			s.Accounts = append(s.Accounts, ss)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(p.loans), func(a, b loanKey) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.currency, b.currency))
	}) {
		l := p.loans[k]
		s.Loans = append(s.Loans, snapLoan{k.id, k.currency, l.paid, l.lent})
	}
	for _, part := range slices.Sorted(maps.Keys(p.items)) {
		s.Items = append(s.Items, p.PartitionItems(part)...)
	}
	var buf bytes.Buffer
	buf.WriteString(magic)
	if err := gob.NewEncoder(&buf).Encode(&s); err != nil {
		return nil, fmt.Errorf("projection: snapshot: %w", err)
	}
	return binary.BigEndian.AppendUint32(buf.Bytes(), crc32.Checksum(buf.Bytes(), castagnoli)), nil
}

// UnmarshalBinary replaces the projection's state (its Config included)
// with a checkpoint's. A checkpoint that is not one, truncated or altered
// is ErrSnapshot, and the projection is left as it was.
func (p *Projection) UnmarshalBinary(b []byte) error {
	n := len(b) - 4
	if n < len(magic) || string(b[:len(magic)]) != magic {
		return fmt.Errorf("%w: not a projection checkpoint (%d bytes)", ErrSnapshot, len(b))
	}
	if got, want := crc32.Checksum(b[:n], castagnoli), binary.BigEndian.Uint32(b[n:]); got != want {
		return fmt.Errorf("%w: checksum %08x, want %08x (truncated or altered)", ErrSnapshot, got, want)
	}
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(b[len(magic):n])).Decode(&s); err != nil {
		return fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	q := New(Config{History: s.History})
	for _, o := range s.Offsets {
		q.offsets[o.Partition] = o.Next
	}
	q.entries = s.Entries
	for _, ss := range s.Accounts {
		sr := q.book.series(ss.Account, ss.Currency)
		sr.debits, sr.credits, sr.total = ss.Debits, ss.Credits, ss.Total
		for _, pt := range ss.Points {
			sr.add(pt.At, pt.Delta)
		}
	}
	for _, l := range s.Loans {
		q.loans[loanKey{l.ID, l.Currency}] = &loan{paid: l.Paid, lent: l.Lent}
	}
	for i := range s.Items {
		it := s.Items[i]
		if q.items[it.Partition] == nil {
			q.items[it.Partition] = map[string]*Item{}
		}
		q.items[it.Partition][it.ID] = &it
	}
	*p = *q
	return nil
}
