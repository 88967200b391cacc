package ledger

import (
	"encoding/binary"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// The canonical encoding of an entry is what its hash covers: every field
// but Hash, in declaration order, each string as its length (uvarint) and
// bytes, each amount as the coefficient and exponent of its shortest exact
// form (the value its JSON string parses back to), each instant as Unix
// seconds and nanoseconds, each optional value behind a presence byte. It
// is deterministic, survives the JSON round trip of the journal, and costs
// a fraction of json.Marshal. A test counts the fields of the encoded
// types, so a field added to them must be added here.
const canonicalTag = "recon.entry/c1\x00"

func appendCanonical(b []byte, e *recon.Entry) []byte {
	b = append(b, canonicalTag...)
	b = appendString(b, e.ID)
	b = appendString(b, e.Kind)
	b = appendString(b, e.LoanID)
	b = appendString(b, e.TransactionID)
	b = appendString(b, string(e.EffectiveDate))
	b = appendTime(b, e.BookedAt)
	b = binary.AppendUvarint(b, uint64(len(e.Postings)))
	for i := range e.Postings {
		p := &e.Postings[i]
		b = appendString(b, p.Account)
		b = appendString(b, string(p.Side))
		b = appendDecimal(b, p.Amount)
		b = appendString(b, p.Currency)
	}
	b = appendString(b, e.Note)
	b = appendString(b, e.Actor)
	b = appendString(b, e.EndToEndID)
	b = appendString(b, e.Reverses)
	if e.Item == nil {
		b = append(b, 0)
	} else {
		b = appendTransaction(append(b, 1), e.Item)
	}
	b = binary.AppendVarint(b, int64(e.Round))
	b = binary.AppendVarint(b, e.Sequence)
	b = appendString(b, e.PrevHash)
	// Fields added since c1 follow, each only when set, so the hashes of
	// entries written before them do not change.
	if e.BorrowerID != "" {
		b = appendString(append(b, 'B'), e.BorrowerID)
	}
	return b
}

func appendTransaction(b []byte, t *recon.BankTransaction) []byte {
	for _, s := range [...]string{t.Type, t.ID, t.ProducerID, t.Source, t.MessageID, t.AccountIBAN, t.VirtualIBAN, string(t.Direction)} {
		b = appendString(b, s)
	}
	b = appendDecimal(b, t.Amount)
	for _, s := range [...]string{t.Currency, string(t.Status), string(t.BookingDate), string(t.ValueDate), t.EndToEndID, t.TransactionID,
		t.MandateID, t.CreditorReference, t.RemittanceInfo, t.BankReference, t.EntryReference} {
		b = appendString(b, s)
	}
	if t.EntryAmount == nil {
		b = append(b, 0)
	} else {
		b = appendDecimal(append(b, 1), *t.EntryAmount)
	}
	for _, s := range [...]string{t.CounterpartyName, t.CounterpartyIBAN, t.CounterpartyBIC, t.BankTxCode} {
		b = appendString(b, s)
	}
	b = appendBool(b, t.Reversal)
	b = appendString(b, t.ReturnReason)
	b = appendMoney(b, t.InstructedAmount)
	b = appendMoney(b, t.Charges)
	b = appendBool(b, t.Remainder)
	b = appendBool(b, t.IsCharge)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendMoney(b []byte, m *recon.Money) []byte {
	if m == nil {
		return append(b, 0)
	}
	b = appendDecimal(append(b, 1), m.Amount)
	return appendString(b, m.Currency)
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000,
	100000000000, 1000000000000, 10000000000000, 100000000000000, 1000000000000000, 10000000000000000,
	100000000000000000, 1000000000000000000}

// appendDecimal writes d's shortest exact form: the coefficient without
// trailing fraction zeros and a non-positive exponent, as decimal's String
// (and so the JSON string) has it. Coefficients beyond int64 fall back to
// that string.
func appendDecimal(b []byte, d decimal.Decimal) []byte {
	c, exp := d.CoefficientInt64(), d.Exponent()
	ok := d.NumDigits() <= 18
	if ok && exp > 0 {
		if int(exp) >= len(pow10) || c > (1<<63-1)/pow10[exp] || c < -(1<<63-1)/pow10[exp] {
			ok = false
		} else {
			c, exp = c*pow10[exp], 0
		}
	}
	if !ok {
		// The same value may have a short form (trailing zeros): decide on
		// the value, not on how it was written.
		if n, err := decimal.NewFromString(d.String()); err == nil && n.NumDigits() <= 18 && n.Exponent() <= 0 {
			return appendDecimal(b, n)
		}
		return appendString(append(b, 1), d.String())
	}
	if c == 0 {
		exp = 0
	}
	for exp < 0 && c%10 == 0 {
		c /= 10
		exp++
	}
	b = binary.AppendVarint(append(b, 0), c)
	return binary.AppendVarint(b, int64(exp))
}
