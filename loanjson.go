package recon

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// DecodeLoan reads a record of the loans topic. It gives exactly what
// json.Unmarshal into a Loan gives, value and error, and is several times
// faster on the records recon writes: a matcher or a ledger view that
// restarts reads every loan before it serves anything. ReadLoanFields
// takes the common shape; anything else goes to encoding/json.
func DecodeLoan(b []byte) (Loan, error) {
	var f LoanFields
	if ReadLoanFields(b, &f) {
		if l, ok := f.loan(); ok {
			return l, nil
		}
	}
	var l Loan
	err := json.Unmarshal(b, &l)
	return l, err
}

// LoanFields is a loans-topic record as ReadLoanFields reads it: each field
// the bytes of its JSON string, between the quotes, inside the record (no
// copy: valid while the record is); amounts as their decimal text.
type LoanFields struct {
	LoanID, VirtualIBAN, Currency, Principal []byte
	MandateID, MandateSignedOn               []byte
	DisbursementEndToEndID                   []byte
	BorrowerID                               []byte
	Borrower                                 bool // a borrower object is present
	BorrowerName, BorrowerIBAN               []byte
	Schedule                                 []InstalmentFields
}

// InstalmentFields is one instalment of LoanFields.
type InstalmentFields struct {
	DueDate, Principal, Interest, Fees []byte
}

// ReadLoanFields reads the shape of record recon writes: one object with the
// keys of Loan, each at most once, every value a string without escapes or
// control characters, in valid UTF-8 (amounts too), or the schedule array
// or borrower object. It reports false for anything else, valid JSON or
// not, which encoding/json then decides (its case-insensitive keys, nulls,
// numbers, escapes, replaced bytes, ignored keys). f.Schedule is reused.
func ReadLoanFields(b []byte, f *LoanFields) bool {
	sched := f.Schedule[:0]
	*f = LoanFields{}
	r := loanReader{b: b}
	ok := r.object(func(k []byte) (uint16, bool) {
		var ok bool
		switch string(k) {
		case "loan_id":
			f.LoanID, ok = r.str()
			return 1 << 0, ok
		case "virtual_iban":
			f.VirtualIBAN, ok = r.str()
			return 1 << 1, ok
		case "currency":
			f.Currency, ok = r.str()
			return 1 << 2, ok
		case "principal":
			f.Principal, ok = r.str()
			return 1 << 3, ok
		case "schedule":
			sched, ok = r.schedule(sched)
			f.Schedule = sched
			return 1 << 4, ok
		case "mandate_id":
			f.MandateID, ok = r.str()
			return 1 << 5, ok
		case "mandate_signed_on":
			f.MandateSignedOn, ok = r.str()
			return 1 << 6, ok
		case "disbursement_end_to_end_id":
			f.DisbursementEndToEndID, ok = r.str()
			return 1 << 7, ok
		case "borrower_id":
			f.BorrowerID, ok = r.str()
			return 1 << 9, ok
		case "borrower":
			f.Borrower = true
			ok = r.object(func(k []byte) (uint16, bool) {
				var ok bool
				switch string(k) {
				case "name":
					f.BorrowerName, ok = r.str()
					return 1 << 0, ok
				case "iban":
					f.BorrowerIBAN, ok = r.str()
					return 1 << 1, ok
				}
				return 0, false
			})
			return 1 << 8, ok
		}
		return 0, false
	})
	r.ws()
	return ok && r.i == len(b)
}

// loan builds the Loan of f, as encoding/json would; false for an amount
// decimal.Decimal does not read (encoding/json then says why).
func (f *LoanFields) loan() (Loan, bool) {
	l := Loan{LoanID: string(f.LoanID), VirtualIBAN: string(f.VirtualIBAN), Currency: string(f.Currency),
		MandateID: string(f.MandateID), MandateSignedOn: Date(f.MandateSignedOn), DisbursementEndToEndID: string(f.DisbursementEndToEndID),
		BorrowerID: string(f.BorrowerID)}
	ok := true
	amount := func(b []byte) decimal.Decimal {
		if b == nil {
			return decimal.Decimal{}
		}
		if v, exp, plain := PlainDecimal(b); plain {
			return decimal.New(v, exp)
		}
		d, err := decimal.NewFromString(string(b))
		ok = ok && err == nil
		return d
	}
	l.Principal = amount(f.Principal)
	if f.Schedule != nil {
		l.Schedule = make([]Instalment, len(f.Schedule))
		for i, in := range f.Schedule {
			l.Schedule[i] = Instalment{DueDate: Date(in.DueDate), Principal: amount(in.Principal), Interest: amount(in.Interest), Fees: amount(in.Fees)}
		}
	}
	if f.Borrower {
		l.Borrower = &Borrower{Name: string(f.BorrowerName), IBAN: string(f.BorrowerIBAN)}
	}
	return l, ok
}

// PlainDecimal reads the plain form recon writes amounts in,
// -?digits[.digits] with at most 18 digits, as coefficient and exponent:
// the value decimal.NewFromString builds for it. False for any other form.
func PlainDecimal(b []byte) (v int64, exp int32, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	digits, dot := 0, -1
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			digits++
		case c == '.' && dot < 0:
			dot = i
		default:
			return 0, 0, false
		}
	}
	if digits == 0 || digits > 18 || dot == 0 || dot == len(b)-1 {
		return 0, 0, false
	}
	if dot > 0 {
		exp = -int32(len(b) - 1 - dot)
	}
	if neg {
		v = -v
	}
	return v, exp, true
}

// loanReader is the strict reader of ReadLoanFields; each method reports
// false for anything outside the shape it takes.
type loanReader struct {
	b []byte
	i int
}

func (r *loanReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *loanReader) next(c byte) bool {
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// str reads a string with no escapes and no control characters, in valid
// UTF-8, and returns the bytes between its quotes (never nil).
func (r *loanReader) str() ([]byte, bool) {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false
	}
	start, ascii := r.i+1, true
	for j := start; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			s := r.b[start:j:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			r.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// object reads {"key": value, ...}, calling field for each key; field
// reads the value and returns its bit, 0 for a key it does not take. A
// key seen twice is left to encoding/json.
func (r *loanReader) object(field func(key []byte) (bit uint16, ok bool)) bool {
	if !r.next('{') {
		return false
	}
	if r.next('}') {
		return true
	}
	var seen uint16
	for {
		k, ok := r.str()
		if !ok || !r.next(':') {
			return false
		}
		bit, ok := field(k)
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		if r.next(',') {
			continue
		}
		return r.next('}')
	}
}

func (r *loanReader) schedule(out []InstalmentFields) ([]InstalmentFields, bool) {
	if !r.next('[') {
		return nil, false
	}
	out = out[:0]
	if out == nil {
		out = []InstalmentFields{}
	}
	if r.next(']') {
		return out, true
	}
	for {
		var in InstalmentFields
		ok := r.object(func(k []byte) (uint16, bool) {
			var ok bool
			switch string(k) {
			case "due_date":
				in.DueDate, ok = r.str()
				return 1 << 0, ok
			case "principal":
				in.Principal, ok = r.str()
				return 1 << 1, ok
			case "interest":
				in.Interest, ok = r.str()
				return 1 << 2, ok
			case "fees":
				in.Fees, ok = r.str()
				return 1 << 3, ok
			}
			return 0, false
		})
		if !ok {
			return nil, false
		}
		out = append(out, in)
		if r.next(',') {
			continue
		}
		return out, r.next(']')
	}
}
