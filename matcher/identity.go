package matcher

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Identity of money across channels.
//
// A bank movement is sighted several times: a producer's event, a webhook,
// the camt.054 notification, the camt.052 intraday report, the camt.053
// statement. Each sighting carries a subset of the movement's references.
// Two sightings on the same account and direction are the same movement
// when they share a strong reference: the account servicer reference
// (bank_reference), the transaction id (the bank's or interbank), the
// end-to-end id unless it is NOTPROVIDED, or the sighting's own identity
// key (a redelivery). When both carry the bank's reference, it decides:
// two payers reusing one end-to-end id (an invoice number) with different
// bank references are different money. A mandate id is never an identity
// (every collection of a mandate carries it).
//
// A sighting without any strong reference (a camt entry with none, a
// producer event with only its own id) is posted under the identity of
// its sighting and flagged unreferenced. A sighting that shares no
// reference with any movement is linked by fingerprint before it is taken
// for new money: the oldest movement on the same account and direction
// with the same amount and currency, a date within FingerprintDays, the
// same counterparty when both name one, no reference of a kind both carry
// with another value, and not yet sighted on this sighting's channel (a
// file message, or a producer's or webhook's source). One sighting per
// channel per movement keeps two equal payments in one file two, and the
// count of movements right when references never overlap.
//
// The Router keeps, per input partition, each movement (Seen) with its
// reference keys, and an index reference key → movements, in its KV (on
// disk in the service, checkpointed with the dedup changelog offset they
// reflect); the changelog, keyed by movement, rebuilds them.

// FingerprintDays is how far apart the dates of two sightings linked by
// fingerprint may be (booking dates shift between channels).
const FingerprintDays = 5

// maxChannels bounds the channels remembered per movement.
const maxChannels = 8

// refKeys lists the reference keys of a sighting: its own identity key,
// then its strong references scoped by account and direction. strong is
// false when the sighting has no strong reference.
func refKeys(t recon.BankTransaction) (keys []string, strong bool) {
	if t.ID != "" {
		keys = append(keys, "i"+t.ID)
	}
	// each strong reference as recon.SightingKey names it (scoped by
	// account and direction), behind a letter for its kind (compatible)
	add := func(letter byte, kind, ref string) {
		if k := recon.SightingKey(t.AccountIBAN, t.Direction, kind, ref); k != "" {
			keys, strong = append(keys, string(letter)+strings.TrimPrefix(k, "bt_")), true
		}
	}
	add('a', "acctsvcr", t.BankReference)
	add('t', "txid", t.TransactionID)
	add('e', "e2e", t.EndToEndID)
	return keys, strong
}

// channel names where a sighting came from: a file message, or a
// producer's or webhook's source.
func channel(t recon.BankTransaction) string {
	if t.MessageID != "" {
		return "m:" + t.MessageID
	}
	return "s:" + t.Source
}

func sightingDate(t recon.BankTransaction) recon.Date {
	if t.ValueDate != "" {
		return t.ValueDate
	}
	return t.BookingDate
}

// fingerprint keys the movements that may be linked without a shared
// reference.
func fingerprint(account string, dir recon.Direction, amount decimal.Decimal, currency string) string {
	return normIBAN(strings.TrimSpace(account)) + "\x00" + string(dir) + "\x00" + amount.String() + "\x00" + currency
}

// identify finds the movement a sighting belongs to: its id and how it was
// recognised, or several ids when its references point to several
// movements (a person must decide), or nothing (new money).
func (r *Router) identify(t recon.BankTransaction, keys []string) (id, how string, several []string) {
	bankRef := strings.TrimSpace(t.BankReference)
	var cands []string
	for _, k := range keys {
		for _, m := range r.movementsBy(k) {
			if k[0] == 'a' { // the bank's own reference decides
				return m, "bank reference", nil
			}
			if !slices.Contains(cands, m) {
				cands = append(cands, m)
			}
		}
	}
	cands = slices.DeleteFunc(cands, func(m string) bool {
		s, _ := r.movement(m)
		return bankRef != "" && s.BankRef != "" && s.BankRef != bankRef
	})
	switch len(cands) {
	case 1:
		return cands[0], "shared reference", nil
	case 0:
	default:
		return "", "", cands
	}
	if m := r.byFingerprint(t, keys); m != "" {
		return m, "no shared reference; linked by account, amount, date and counterparty to a sighting of another channel", nil
	}
	return "", "", nil
}

// byFingerprint finds the oldest movement this sighting may be linked to
// without a shared reference: not yet sighted on this channel, dates
// within FingerprintDays, the same counterparty and virtual IBAN when both
// name one, and no reference of a kind both carry with different values (two end-to-end
// ids, two bank references: different money).
func (r *Router) byFingerprint(t recon.BankTransaction, keys []string) string {
	ch, date := channel(t), sightingDate(t)
	cp, vi := normIBAN(strings.TrimSpace(t.CounterpartyIBAN)), normIBAN(strings.TrimSpace(t.VirtualIBAN))
	fp := fingerprint(t.AccountIBAN, t.Direction, t.Amount, t.Currency)
	// A sighting carrying the bank's reference can only be a movement
	// without one (two bank references that differ are different money;
	// equal ones are found by reference): the movements with one are not
	// even scanned, which keeps a busy account's lookups short.
	lists := [][]printed{r.printed(fp + printsNoBankRef)}
	if strings.TrimSpace(t.BankReference) == "" {
		lists = append(lists, r.printed(fp+printsBankRef))
	}
	for _, ps := range lists {
		for _, p := range ps {
			m := p.id
			s, ok := r.movement(m)
			switch {
			case !ok, slices.Contains(s.Channels, ch),
				cp != "" && s.Counterparty != "" && s.Counterparty != cp,
				vi != "" && s.VirtualIBAN != "" && s.VirtualIBAN != vi,
				!withinDays(date, s.Date, FingerprintDays),
				!compatible(keys, s.Refs):
				continue
			}
			return m
		}
	}
	return ""
}

// The fingerprint index keeps movements with and without the bank's
// reference apart.
const (
	printsBankRef   = "\x00b"
	printsNoBankRef = "\x00n"
)

// compatible reports whether a sighting's strong reference keys can belong
// to a movement: for every kind the sighting carries, the movement has no
// key of that kind or has this one.
func compatible(keys, refs []string) bool {
	for _, k := range keys {
		if k[0] == 'i' || slices.Contains(refs, k) {
			continue
		}
		for _, ref := range refs {
			if ref[0] == k[0] {
				return false
			}
		}
	}
	return true
}

// withinDays reports whether two dates are at most n days apart; an
// unknown date is near any.
func withinDays(a, b recon.Date, n int64) bool {
	da, okA := dayOf([]byte(a))
	db, okB := dayOf([]byte(b))
	if !okA || !okB || da == 0 || db == 0 {
		return true
	}
	return da-db <= n && db-da <= n
}

// newSeen is what is remembered of a new movement.
func newSeen(t recon.BankTransaction, keys []string, strong bool) Seen {
	return Seen{ID: t.ID, Amount: t.Amount, Currency: t.Currency, Direction: t.Direction, Refs: keys,
		BankRef: strings.TrimSpace(t.BankReference), Unreferenced: !strong, Account: t.AccountIBAN,
		Date: sightingDate(t), Counterparty: normIBAN(strings.TrimSpace(t.CounterpartyIBAN)),
		VirtualIBAN: normIBAN(strings.TrimSpace(t.VirtualIBAN)), Channels: []string{channel(t)}}
}

// link adds a sighting's references and channel to its movement; it
// returns the updated movement when anything changed (to write to the
// changelog), else nil.
func (r *Router) link(id string, t recon.BankTransaction, keys []string) *Seen {
	s, _ := r.movement(id)
	changed := false
	for _, k := range keys {
		if !slices.Contains(s.Refs, k) {
			s.Refs, changed = append(s.Refs, k), true
		}
	}
	if ch := channel(t); !slices.Contains(s.Channels, ch) {
		if len(s.Channels) >= maxChannels {
			s.Channels = s.Channels[1:]
		}
		s.Channels, changed = append(slices.Clone(s.Channels), ch), true
	}
	if br := strings.TrimSpace(t.BankReference); s.BankRef == "" && br != "" {
		s.BankRef, changed = br, true
	}
	if s.Counterparty == "" && t.CounterpartyIBAN != "" {
		s.Counterparty, changed = normIBAN(strings.TrimSpace(t.CounterpartyIBAN)), true
	}
	if s.VirtualIBAN == "" && t.VirtualIBAN != "" {
		s.VirtualIBAN, changed = normIBAN(strings.TrimSpace(t.VirtualIBAN)), true
	}
	if !changed {
		return nil
	}
	r.Remember(id, s)
	return &s
}

// Remember restores one movement from the changelog (or records one just
// decided): its references and fingerprint are indexed. Remembering the
// same movement again is harmless.
func (r *Router) Remember(id string, s Seen) {
	s.ID = id
	_, known := r.movement(id)
	r.kv.Set(keyMovement+id, encodeSeen(s))
	r.recent.put(id, s)
	for _, k := range s.Refs {
		if k[0] != 'i' { // a movement's own id is found by its key
			r.index(k, id)
		}
	}
	if known || s.Account == "" {
		return
	}
	fp := fingerprint(s.Account, s.Direction, s.Amount, s.Currency) + printsNoBankRef
	if s.BankRef != "" {
		fp = fingerprint(s.Account, s.Direction, s.Amount, s.Currency) + printsBankRef
	}
	day, ok := dayOf([]byte(s.Date))
	if !ok || day == 0 {
		day = r.newest // undated: kept as long as what is dated now
	}
	if day > r.newest {
		r.newest = day
		r.kv.Set(keyNewest, binary.AppendVarint(nil, day))
	}
	// the movements of the fingerprint, those out of the window dropped,
	// the oldest dropped too past maxPrints
	kept := r.printed(fp)
	if len(kept) >= maxPrints {
		kept = kept[len(kept)-maxPrints+1:]
	}
	kept = append(kept, printed{day: day, id: id})
	var b []byte
	for _, p := range kept {
		b = p.append(b)
	}
	r.kv.Set(keyPrint+fp, b)
}

// Keys of the Router's state in its KV:
//
//	m<movement id>       the movement (Seen, as on the dedup changelog)
//	r<reference key>     the movements with that reference (ids, each
//	                     preceded by its length)
//	p<fingerprint>       the movements of the last fingerprintRetainDays
//	                     with that fingerprint, oldest first (day and id
//	                     each); those out of the window are dropped when
//	                     the next movement of the fingerprint is indexed
//	n                    the newest date indexed
const (
	keyMovement = "m"
	keyRef      = "r"
	keyPrint    = "p"
	keyNewest   = "n"
)

// maxPrints bounds the movements indexed under one fingerprint (equal
// amounts on one account within the window): past it the oldest cannot be
// linked without a shared reference any more.
const maxPrints = 2000

// Open makes the Router keep its movements in kv.
func (r *Router) Open(kv KV) {
	r.kv, r.recent, r.newest = kv, seenCache{}, 0
	if v, ok := kv.Get(keyNewest); ok {
		r.newest, _ = binary.Varint(v)
	}
}

// movement returns a movement by id.
func (r *Router) movement(id string) (Seen, bool) {
	if s, ok := r.recent.get(id); ok {
		return s, true
	}
	v, ok := r.kv.Get(keyMovement + id)
	if !ok {
		return Seen{}, false
	}
	s, err := decodeSeen(v)
	if err != nil {
		panic("matcher: movement " + id + " in the state store does not decode: " + err.Error()) // written by encodeSeen
	}
	s.ID = id
	r.recent.put(id, s)
	return s, true
}

// movementsBy returns the movements a reference key names.
func (r *Router) movementsBy(k string) []string {
	if k[0] == 'i' {
		if _, ok := r.movement(k[1:]); ok {
			return []string{k[1:]}
		}
		return nil
	}
	v, _ := r.kv.Get(keyRef + k)
	return decodeIDs(v)
}

func (r *Router) index(k, id string) {
	v, _ := r.kv.Get(keyRef + k)
	if ids := decodeIDs(v); !slices.Contains(ids, id) {
		r.kv.Set(keyRef+k, appendID(slices.Clone(v), id))
	}
}

func appendID(b []byte, id string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(id))), id...)
}

func decodeIDs(b []byte) []string {
	var ids []string
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			panic("matcher: reference index entry does not decode") // written by appendID
		}
		ids, b = append(ids, string(b[w:w+int(n)])), b[w+int(n):]
	}
	return ids
}

func encodeSeen(s Seen) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("matcher: movement does not encode: " + err.Error())
	}
	return b
}

func decodeSeen(b []byte) (Seen, error) {
	var s Seen
	err := json.Unmarshal(b, &s)
	return s, err
}

// printed is one movement in the fingerprint index.
type printed struct {
	day int64
	id  string
}

func (p printed) append(b []byte) []byte {
	return appendID(binary.AppendVarint(b, p.day), p.id)
}

// printed lists the movements indexed under a fingerprint within the
// window (fingerprintRetainDays before the newest date), oldest first.
func (r *Router) printed(fp string) []printed {
	v, _ := r.kv.Get(keyPrint + fp)
	horizon := r.newest - fingerprintRetainDays
	var out []printed
	for len(v) > 0 {
		day, w := binary.Varint(v)
		if w <= 0 {
			panic("matcher: fingerprint index entry does not decode") // written by printed.append
		}
		v = v[w:]
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			panic("matcher: fingerprint index entry does not decode")
		}
		if day >= horizon {
			out = append(out, printed{day: day, id: string(v[w : w+int(n)])})
		}
		v = v[w+int(n):]
	}
	return out
}

// fingerprintRetainDays is how long a movement stays in the fingerprint
// index after the newest date seen: a sighting arriving that much later
// (a statement re-sent a month on) still links by fingerprint.
const fingerprintRetainDays = 31

// seenCache keeps the movements read or written last, up to
// seenCacheSize, in two generations: the reads of a busy account's recent
// movements stay in memory, the rest of history on disk.
type seenCache struct {
	cur, prev map[string]Seen
}

const seenCacheSize = 1 << 16

func (c *seenCache) get(id string) (Seen, bool) {
	if s, ok := c.cur[id]; ok {
		return s, true
	}
	s, ok := c.prev[id]
	if ok {
		c.put(id, s)
	}
	return s, ok
}

func (c *seenCache) put(id string, s Seen) {
	if c.cur == nil || len(c.cur) >= seenCacheSize/2 {
		c.prev, c.cur = c.cur, make(map[string]Seen, seenCacheSize/2)
	}
	// clipped: a caller's append never writes into a cached array
	s.Refs, s.Channels = slices.Clip(s.Refs), slices.Clip(s.Channels)
	c.cur[id] = s
}
