package matcher

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/schemas"
)

// Limits of the loans table: a loan outside them is refused by Put.
const (
	MaxLoanIDBytes   = 128
	MaxRefBytes      = 140 // virtual IBAN, mandate id, disbursement end-to-end id
	MaxInstalments   = 2000
	maxArenaBytes    = math.MaxUint32 - 1
	arenaCompactFrom = 1 << 20
)

// Loans is the global table of loans every matcher instance holds, read
// from the compacted loans topic. It keeps only what matching needs, packed
// for a million loans: one byte arena holds each loan's id, normalized
// virtual IBAN, mandate id, disbursement end-to-end id, currency, principal
// and its schedule — instalments sorted by due date, the amounts of each
// part in minor units, delta-coded as varints (regular schedules cost a few
// bytes per instalment; due dates are not kept: only their order matters
// to the waterfall). Four open-addressing indexes of arena offsets find a
// loan by id, virtual IBAN, mandate and disbursement end-to-end id.
type Loans struct {
	arena   []byte
	garbage int // bytes of replaced and deleted records
	n       int
	seed    maphash.Seed
	idx     [nKeys]index
	// contested lists, per virtual IBAN that several loans claim, the
	// loans claiming it: payments to it are parked, never given to
	// whichever loan was loaded last (the table must not depend on the
	// order it is read in). Empty in a healthy portfolio.
	contested map[string][]string
	// Borrowers (a virtual IBAN for all their loans): borrower id → its
	// virtual IBAN, virtual IBAN → the borrowers claiming it, borrower id →
	// their loans (sorted).
	borrowers      map[string]string
	vibanBorrowers map[string][]string
	loansOf        map[string][]string

	// PutJSON's scratch: the fields of the record, its packed form
	fields  recon.LoanFields
	scratch []byte
	parts   [][3]int64
	days    []int64
}

// The keys a loan is found by, in record order.
const (
	keyID = iota
	keyVIBAN
	keyMandate
	keyDisb
	nKeys
)

// NewLoans returns an empty table.
func NewLoans() *Loans {
	return &Loans{arena: []byte{0, 0}, seed: maphash.MakeSeed()} // offsets 0 and 1 mark empty and deleted slots
}

// Put adds or replaces a loan. It refuses a loan the table cannot hold
// exactly: an id or reference over its limit, a currency that is not three
// letters, amounts negative or with more fraction digits than the
// currency has.
func (l *Loans) Put(loan recon.Loan) error {
	rec, err := encodeLoan(loan)
	if err != nil {
		return fmt.Errorf("loan %q: %w", loan.LoanID, err)
	}
	return l.putRecord(loan.LoanID, rec)
}

// PutJSON adds or replaces the loan of a loans-topic record: what
// Put(recon.DecodeLoan(b)) does, record and error alike, but the records
// recon writes go from their bytes to the table without a recon.Loan in
// between (reading every loan is most of a matcher's restart).
func (l *Loans) PutJSON(b []byte) error {
	if recon.ReadLoanFields(b, &l.fields) {
		var ok bool
		if l.scratch, ok = l.packFields(l.scratch[:0]); ok {
			return l.putRecord(view(l.fields.LoanID), l.scratch)
		}
	}
	loan, err := recon.DecodeLoan(b)
	if err != nil {
		return err
	}
	return l.Put(loan)
}

// putRecord stores the packed record of loan id (which may be a view of
// the caller's bytes: it is not kept).
func (l *Loans) putRecord(id string, rec []byte) error {
	if len(l.arena)+len(rec) > maxArenaBytes {
		return fmt.Errorf("loan %q: the loans table is full (%d bytes)", id, len(l.arena))
	}
	l.Delete(id)
	off := uint32(len(l.arena))
	l.arena = append(l.arena, rec...)
	l.n++
	if b := l.view(off).borrower; b != "" {
		l.addLoanOf(b, id)
	}
	for k := range nKeys {
		if key := l.key(off, k); key != "" {
			if k == keyVIBAN {
				l.claim(key, off)
			}
			l.set(k, key, off)
		}
	}
	return nil
}

// claim records a second claim on a virtual IBAN.
func (l *Loans) claim(viban string, off uint32) {
	held, ok := l.find(keyVIBAN, viban)
	if !ok || held == off {
		return
	}
	if l.contested == nil {
		l.contested = map[string][]string{}
	}
	ids := l.contested[viban]
	if len(ids) == 0 {
		ids = []string{strings.Clone(l.key(held, keyID))}
	}
	l.contested[viban] = append(ids, strings.Clone(l.key(off, keyID)))
}

// unclaim withdraws a loan's claim on a contested virtual IBAN; the last
// claimant left holds it alone.
func (l *Loans) unclaim(viban, id string) {
	ids, ok := l.contested[viban]
	if !ok {
		return
	}
	ids = slices.DeleteFunc(ids, func(x string) bool { return x == id })
	if len(ids) > 1 {
		l.contested[viban] = ids
		return
	}
	delete(l.contested, viban)
	if len(ids) == 1 {
		if off, ok := l.find(keyID, ids[0]); ok {
			l.set(keyVIBAN, viban, off)
		}
	}
}

// Claimants lists the loans and borrowers ("borrower/<id>") that claim a
// virtual IBAN when more than one does (nil when one or none holds it).
func (l *Loans) Claimants(viban string) []string {
	v := normIBAN(viban)
	bs := l.vibanBorrowers[v]
	if len(bs) == 0 {
		return l.contested[v]
	}
	ids := slices.Clone(l.contested[v])
	if off, ok := l.find(keyVIBAN, v); ok && len(ids) == 0 {
		ids = append(ids, l.key(off, keyID))
	}
	for _, b := range bs {
		ids = append(ids, BorrowerKey(b))
	}
	if len(ids) < 2 {
		return nil
	}
	return ids
}

// BorrowerKey is how a borrower is named where loans are (routing keys,
// claimants): schemas.BorrowerKey.
func BorrowerKey(id string) string { return schemas.BorrowerKey(id) }

func (l *Loans) addLoanOf(borrower, id string) {
	if l.loansOf == nil {
		l.loansOf = map[string][]string{}
	}
	ids := l.loansOf[borrower]
	i, found := slices.BinarySearch(ids, id)
	if !found {
		l.loansOf[borrower] = slices.Insert(ids, i, strings.Clone(id))
	}
}

// PutBorrower adds or replaces a borrower: their virtual IBAN then serves
// all their loans. A virtual IBAN also claimed by a loan or another
// borrower is contested (Claimants), never taken over.
func (l *Loans) PutBorrower(b recon.Borrower) error {
	switch {
	case b.ID == "" || len(b.ID) > MaxLoanIDBytes:
		return fmt.Errorf("borrower id must have 1 to %d bytes", MaxLoanIDBytes)
	case len(b.VirtualIBAN) > MaxRefBytes:
		return fmt.Errorf("borrower %q: virtual IBAN longer than %d bytes", b.ID, MaxRefBytes)
	}
	l.DeleteBorrower(b.ID)
	if l.borrowers == nil {
		l.borrowers, l.vibanBorrowers = map[string]string{}, map[string][]string{}
	}
	v := normIBAN(b.VirtualIBAN)
	l.borrowers[strings.Clone(b.ID)] = v
	if v != "" {
		l.vibanBorrowers[v] = append(l.vibanBorrowers[v], strings.Clone(b.ID))
		slices.Sort(l.vibanBorrowers[v])
	}
	return nil
}

// DeleteBorrower removes a borrower (a tombstone on the compacted topic);
// their loans keep their borrower id and are found by their own keys.
func (l *Loans) DeleteBorrower(id string) {
	v, ok := l.borrowers[id]
	if !ok {
		return
	}
	delete(l.borrowers, id)
	bs := slices.DeleteFunc(l.vibanBorrowers[v], func(x string) bool { return x == id })
	if len(bs) == 0 {
		delete(l.vibanBorrowers, v)
	} else {
		l.vibanBorrowers[v] = bs
	}
}

// BorrowerByVIBAN finds the one borrower holding a virtual IBAN.
func (l *Loans) BorrowerByVIBAN(viban string) (string, bool) {
	bs := l.vibanBorrowers[normIBAN(viban)]
	if len(bs) != 1 {
		return "", false
	}
	return bs[0], true
}

// LoansOf lists a borrower's loans, sorted by id (shared: do not modify).
func (l *Loans) LoansOf(borrower string) []string { return l.loansOf[borrower] }

// PartitionKey is the routing key of a loan's money: its borrower's
// (BorrowerKey) when it has one, so a payment to the borrower can be
// allocated across their loans in one place, else the loan id.
func (l *Loans) PartitionKey(loanID string) string {
	if off, ok := l.find(keyID, loanID); ok {
		if b := l.view(off).borrower; b != "" {
			return BorrowerKey(b)
		}
	}
	return loanID
}

// packedVersion leads a packed record outside the table (Packed): a store
// written by a build with another record layout is not read as this one.
const packedVersion = 1

// Packed returns a copy of a loan's record in the table's own form, for the
// matcher's local store: PutPacked takes it back without parsing JSON
// (about ten times faster, which is most of a restart with a million loans).
func (l *Loans) Packed(id string) ([]byte, bool) {
	off, ok := l.find(keyID, id)
	if !ok {
		return nil, false
	}
	rec := l.arena[off : int(off)+l.recordLen(off)]
	return append([]byte{packedVersion}, rec...), true
}

// PutPacked adds or replaces a loan from its packed record (Packed). A
// record of another layout, or one whose lengths do not add up, is an
// error and the table is unchanged.
func (l *Loans) PutPacked(rec []byte) error {
	if len(rec) == 0 || rec[0] != packedVersion {
		return fmt.Errorf("packed loan record: not of layout %d", packedVersion)
	}
	rec = rec[1:]
	id, ok := checkPacked(rec)
	if !ok {
		return fmt.Errorf("packed loan record: malformed (%d bytes)", len(rec))
	}
	return l.putRecord(id, rec)
}

// checkPacked walks a packed record with bounds checks: its id, and
// whether its parts fill it exactly.
func checkPacked(rec []byte) (id string, ok bool) {
	o := 0
	for i := range 5 { // id, virtual IBAN, mandate, disbursement e2e, borrower
		n, k := binary.Uvarint(rec[o:])
		if k <= 0 || n > uint64(len(rec)-o-k) {
			return "", false
		}
		if i == 0 {
			id = string(rec[o+k : o+k+int(n)])
		}
		o += k + int(n)
	}
	if o += 3; o > len(rec) { // currency
		return "", false
	}
	varint := func() bool {
		_, k := binary.Varint(rec[o:])
		o += k
		return k > 0
	}
	if !varint() { // principal
		return "", false
	}
	n, k := binary.Uvarint(rec[o:])
	if k <= 0 || n > MaxInstalments {
		return "", false
	}
	o += k
	for range 4 * n { // due date, fees, interest, principal of each instalment
		if !varint() {
			return "", false
		}
	}
	return id, id != "" && o == len(rec)
}

// Delete removes a loan (a tombstone on the compacted topic).
func (l *Loans) Delete(id string) {
	off, ok := l.find(keyID, id)
	if !ok {
		return
	}
	if b := l.view(off).borrower; b != "" {
		l.loansOf[b] = slices.DeleteFunc(l.loansOf[b], func(x string) bool { return x == id })
		if len(l.loansOf[b]) == 0 {
			delete(l.loansOf, b)
		}
	}
	for k := range nKeys {
		if key := l.key(off, k); key != "" {
			l.del(k, key, off)
			if k == keyVIBAN && len(l.contested) > 0 {
				l.unclaim(key, id)
			}
		}
	}
	l.n--
	l.garbage += l.recordLen(off)
	if l.garbage > arenaCompactFrom && l.garbage > len(l.arena)/2 {
		l.compact()
	}
}

// Get returns a loan by id: what the table keeps of it (no personal data;
// the schedule in due order).
func (l *Loans) Get(id string) (recon.Loan, bool) {
	off, ok := l.find(keyID, id)
	if !ok {
		return recon.Loan{}, false
	}
	v := l.view(off)
	scale := -exponent(v.currency)
	loan := recon.Loan{LoanID: strings.Clone(v.id), VirtualIBAN: strings.Clone(v.viban), Currency: v.currency,
		Principal: decimal.New(v.principal, scale), MandateID: strings.Clone(v.mandate), DisbursementEndToEndID: strings.Clone(v.disb),
		BorrowerID: strings.Clone(v.borrower)}
	it := v.instalments()
	for !it.only && it.next() {
		var due recon.Date
		if it.day != 0 {
			due = dateOfDay(it.day)
		}
		loan.Schedule = append(loan.Schedule, recon.Instalment{DueDate: due, Fees: decimal.New(it.part[partFees], scale),
			Interest: decimal.New(it.part[partInterest], scale), Principal: decimal.New(it.part[partPrincipal], scale)})
	}
	return loan, true
}

// Len is the number of loans.
func (l *Loans) Len() int { return l.n }

func normIBAN(s string) string {
	if strings.IndexByte(s, ' ') < 0 && strings.ToUpper(s) == s { // ToUpper returns s itself when nothing changes
		return s
	}
	return strings.ToUpper(strings.ReplaceAll(s, " ", ""))
}

// --- the record -------------------------------------------------------------

// A record is: uvarint length + bytes of id, normalized virtual IBAN,
// mandate id, disbursement end-to-end id, borrower id; 3 bytes currency;
// varint principal; uvarint instalment count; per instalment four varints,
// the change of due date (days since 1970-01-01; an absent date is day 0)
// and of fees, interest and principal from the previous instalment.
// CheckLoan says whether the loans table can hold a loan exactly (what Put
// would refuse): ingest refuses such a loan at the door with a 400 rather
// than accepting it and leaving the matcher to drop it.
func CheckLoan(loan recon.Loan) error {
	_, err := encodeLoan(loan)
	return err
}

func encodeLoan(loan recon.Loan) ([]byte, error) {
	switch {
	case loan.LoanID == "" || len(loan.LoanID) > MaxLoanIDBytes:
		return nil, fmt.Errorf("loan id must have 1 to %d bytes", MaxLoanIDBytes)
	case len(loan.VirtualIBAN) > MaxRefBytes || len(loan.MandateID) > MaxRefBytes || len(loan.DisbursementEndToEndID) > MaxRefBytes ||
		len(loan.BorrowerID) > MaxLoanIDBytes:
		return nil, fmt.Errorf("a reference is longer than %d bytes", MaxRefBytes)
	case len(loan.Currency) != 3:
		return nil, fmt.Errorf("currency %q is not an ISO 4217 code", loan.Currency)
	case len(loan.Schedule) > MaxInstalments:
		return nil, fmt.Errorf("%d instalments, the limit is %d", len(loan.Schedule), MaxInstalments)
	}
	principal, err := toMinor(loan.Principal, loan.Currency)
	if err != nil || principal < 0 {
		return nil, fmt.Errorf("principal %s: %v", loan.Principal, orNegative(err))
	}
	sched := sortedSchedule(loan.Schedule)
	parts := make([][3]int64, len(sched))
	days := make([]int64, len(sched))
	for i, in := range sched {
		d, ok := dayOf([]byte(in.DueDate))
		if !ok {
			return nil, fmt.Errorf("instalment %d: due date %q is not YYYY-MM-DD", i, in.DueDate)
		}
		days[i] = d
		for p, a := range [3]decimal.Decimal{in.Fees, in.Interest, in.Principal} {
			v, err := toMinor(a, loan.Currency)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("instalment %d (%s): %s: %v", i, in.DueDate, partNames[p], orNegative(err))
			}
			if v > maxMinor/int64(MaxInstalments) {
				return nil, fmt.Errorf("instalment %d (%s): %s %s is too large", i, in.DueDate, partNames[p], a)
			}
			parts[i][p] = v
		}
	}
	return pack(make([]byte, 0, 64+5*len(sched)), [5]string{loan.LoanID, normIBAN(loan.VirtualIBAN), loan.MandateID, loan.DisbursementEndToEndID, loan.BorrowerID},
		loan.Currency, principal, parts, days), nil
}

// dateOfDay is the date of a day number of dayOf.
func dateOfDay(day int64) recon.Date {
	return recon.Date(time.Unix(day*86400, 0).UTC().Format(time.DateOnly))
}

// dayOf is a due date as days since 1970-01-01 (0 for an absent date);
// false when it is not a calendar date YYYY-MM-DD.
func dayOf(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, false
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, m, d := num(b[:4]), num(b[5:7]), num(b[8:])
	if y < 1 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // 31 April
		return 0, false
	}
	return t.Unix() / 86400, true
}

// packFields is encodeLoan on l.fields, for PutJSON: false for anything
// encodeLoan would refuse or that ReadLoanFields left as text the plain
// reader does not take (Put then decides, and words the error).
func (l *Loans) packFields(dst []byte) ([]byte, bool) {
	f := &l.fields
	switch {
	case len(f.LoanID) == 0 || len(f.LoanID) > MaxLoanIDBytes,
		len(f.VirtualIBAN) > MaxRefBytes || len(f.MandateID) > MaxRefBytes || len(f.DisbursementEndToEndID) > MaxRefBytes,
		len(f.BorrowerID) > MaxLoanIDBytes,
		len(f.Currency) != 3,
		len(f.Schedule) > MaxInstalments:
		return dst, false
	}
	scale := exponent(view(f.Currency))
	minor := func(text []byte, limit int64) (int64, bool) {
		if text == nil { // absent: zero, as encoding/json leaves it
			return 0, true
		}
		c, exp, ok := recon.PlainDecimal(text)
		if !ok {
			return 0, false
		}
		v, ok := shiftMinor(c, exp, scale)
		return v, ok && v >= 0 && v <= limit
	}
	principal, ok := minor(f.Principal, maxMinor)
	if !ok {
		return dst, false
	}
	sched := f.Schedule
	for i := 1; i < len(sched); i++ { // stable, as sortedSchedule
		for j := i; j > 0 && view(sched[j].DueDate) < view(sched[j-1].DueDate); j-- {
			sched[j], sched[j-1] = sched[j-1], sched[j]
		}
	}
	parts, days := l.parts[:0], l.days[:0]
	for _, in := range sched {
		day, ok := dayOf(in.DueDate)
		if !ok {
			return dst, false
		}
		days = append(days, day)
		var p [3]int64
		for k, text := range [3][]byte{in.Fees, in.Interest, in.Principal} {
			if p[k], ok = minor(text, maxMinor/int64(MaxInstalments)); !ok {
				return dst, false
			}
		}
		parts = append(parts, p)
	}
	l.parts, l.days = parts, days
	return pack(dst, [5]string{view(f.LoanID), normIBAN(view(f.VirtualIBAN)), view(f.MandateID), view(f.DisbursementEndToEndID), view(f.BorrowerID)},
		view(f.Currency), principal, parts, days), true
}

// pack appends a loan's record: its four keys, currency, principal and the
// parts of each instalment (in due order) delta-coded.
func pack(b []byte, keys [5]string, currency string, principal int64, parts [][3]int64, days []int64) []byte {
	for _, s := range keys {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, currency...)
	b = binary.AppendVarint(b, principal)
	b = binary.AppendUvarint(b, uint64(len(parts)))
	var prev [3]int64
	var prevDay int64
	for i, p := range parts {
		b = binary.AppendVarint(b, days[i]-prevDay)
		prevDay = days[i]
		for k, v := range p {
			b = binary.AppendVarint(b, v-prev[k])
			prev[k] = v
		}
	}
	return b
}

// view is b as a string without a copy, for a moment: never kept.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func orNegative(err error) error {
	if err == nil {
		return fmt.Errorf("negative")
	}
	return err
}

// sortedSchedule orders instalments by due date, stable (insertion sort:
// schedules are short and usually sorted already).
func sortedSchedule(s []recon.Instalment) []recon.Instalment {
	out := append([]recon.Instalment(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].DueDate < out[j-1].DueDate; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// loanView reads a record in place; its strings share the arena.
type loanView struct {
	id, viban, mandate, disb, borrower, currency string
	principal                                    int64
	sched                                        []byte // count, then the deltas
	schedAt                                      int    // arena offset of sched
}

func (l *Loans) str(off int) (string, int) {
	n, k := binary.Uvarint(l.arena[off:])
	off += k
	return unsafe.String(unsafe.SliceData(l.arena[off:]), int(n)), off + int(n)
}

// key returns one of the record's keys (read-only, shares the arena).
func (l *Loans) key(off uint32, k int) string {
	o := int(off)
	var s string
	for range k + 1 {
		s, o = l.str(o)
	}
	return s
}

func (l *Loans) view(off uint32) loanView {
	var v loanView
	o := int(off)
	v.id, o = l.str(o)
	v.viban, o = l.str(o)
	v.mandate, o = l.str(o)
	v.disb, o = l.str(o)
	v.borrower, o = l.str(o)
	v.currency = unsafe.String(unsafe.SliceData(l.arena[o:]), 3)
	o += 3
	p, k := binary.Varint(l.arena[o:])
	v.principal = p
	v.schedAt = o + k
	v.sched = l.arena[v.schedAt:]
	return v
}

func (l *Loans) recordLen(off uint32) int {
	v := l.view(off)
	it := v.instalments()
	for it.next() {
	}
	return v.schedAt + it.pos - int(off)
}

// instalments iterates a record's schedule without allocating. A loan
// without a schedule owes its principal as one instalment.
type instalments struct {
	b    []byte
	pos  int
	left int
	part [3]int64 // fees, interest, principal of the current instalment
	day  int64    // its due date, days since 1970-01-01 (0: none)
	only bool     // the principal-only instalment of a loan without schedule
	prin int64
}

func (v loanView) instalments() instalments {
	n, k := binary.Uvarint(v.sched)
	it := instalments{b: v.sched, pos: k, left: int(n)}
	if n == 0 {
		it.only, it.prin, it.left = true, v.principal, 1
	}
	return it
}

func (it *instalments) next() bool {
	if it.left == 0 {
		return false
	}
	it.left--
	if it.only {
		it.part = [3]int64{0, 0, it.prin}
		return true
	}
	d, k := binary.Varint(it.b[it.pos:])
	it.pos += k
	it.day += d
	for p := range 3 {
		d, k := binary.Varint(it.b[it.pos:])
		it.pos += k
		it.part[p] += d
	}
	return true
}

// --- the indexes ------------------------------------------------------------

// index is an open-addressing hash table of arena offsets with linear
// probing; 0 is an empty slot, 1 a deleted one.
type index struct {
	slots      []uint32
	used, tomb int
}

const (
	slotEmpty   = 0
	slotDeleted = 1
)

func (l *Loans) find(k int, key string) (uint32, bool) {
	x := &l.idx[k]
	if len(x.slots) == 0 || key == "" {
		return 0, false
	}
	mask := uint64(len(x.slots) - 1)
	for i := maphash.String(l.seed, key) & mask; ; i = (i + 1) & mask {
		switch s := x.slots[i]; s {
		case slotEmpty:
			return 0, false
		case slotDeleted:
		default:
			if l.key(s, k) == key {
				return s, true
			}
		}
	}
}

// set maps key to off, replacing what it mapped to.
func (l *Loans) set(k int, key string, off uint32) {
	x := &l.idx[k]
	if (x.used+x.tomb+1)*4 > len(x.slots)*3 {
		l.rehash(k, max(16, 2*x.used+2))
	}
	mask := uint64(len(x.slots) - 1)
	free := -1
	for i := maphash.String(l.seed, key) & mask; ; i = (i + 1) & mask {
		switch s := x.slots[i]; s {
		case slotEmpty:
			if free < 0 {
				free = int(i)
			} else {
				x.tomb--
			}
			x.slots[free] = off
			x.used++
			return
		case slotDeleted:
			if free < 0 {
				free = int(i)
			}
		default:
			if l.key(s, k) == key {
				x.slots[i] = off
				return
			}
		}
	}
}

// del removes key when it maps to off (another loan may have taken it).
func (l *Loans) del(k int, key string, off uint32) {
	if s, ok := l.find(k, key); !ok || s != off {
		return
	}
	x := &l.idx[k]
	mask := uint64(len(x.slots) - 1)
	for i := maphash.String(l.seed, key) & mask; ; i = (i + 1) & mask {
		if x.slots[i] == off {
			x.slots[i] = slotDeleted
			x.used--
			x.tomb++
			return
		}
	}
}

// rehash rebuilds index k with room for n keys.
func (l *Loans) rehash(k, n int) {
	size := 16
	for size*3 < n*4 {
		size *= 2
	}
	old := l.idx[k].slots
	l.idx[k] = index{slots: make([]uint32, size)}
	for _, s := range old {
		if s > slotDeleted {
			l.set(k, l.key(s, k), s)
		}
	}
}

// compact copies the live records into a new arena.
func (l *Loans) compact() {
	old := l
	fresh := &Loans{arena: make([]byte, 2, len(l.arena)-l.garbage+2), seed: l.seed}
	for _, s := range old.idx[keyID].slots {
		if s > slotDeleted {
			rec := old.arena[s : int(s)+old.recordLen(s)]
			off := uint32(len(fresh.arena))
			fresh.arena = append(fresh.arena, rec...)
			fresh.n++
			for k := range nKeys {
				// a key another loan took over stays with that loan
				if key := fresh.key(off, k); key != "" {
					if cur, ok := old.find(k, key); ok && cur == s {
						fresh.set(k, key, off)
					}
				}
			}
		}
	}
	*l = *fresh
}

// --- money in minor units ---------------------------------------------------
