package swift

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// balance reads :60F:/:60M:/:62F:/:62M:/:64:/:65:, "C110614EUR473,17": the
// mark, the date, the currency and the amount.
func (r *reader) balance() (*balance, error) {
	s := r.joined()
	if len(s) < 11 || (s[0] != 'C' && s[0] != 'D') {
		return nil, r.failField(fmt.Sprintf("unreadable balance %q (want C or D, YYMMDD, currency, amount)", clip(s)))
	}
	date, ok := yymmdd(s[1:7], false)
	if !ok {
		return nil, r.failField(fmt.Sprintf("invalid date %q in balance %q", s[1:7], clip(s)))
	}
	ccy := s[7:10]
	if !isCurrency(ccy) {
		return nil, r.failField(fmt.Sprintf("unreadable balance %q: %q is no currency code", clip(s), ccy))
	}
	amt, err := parseAmount(s[10:], r.lim.MaxAmountDigits)
	if err != nil {
		return nil, r.failField(err.Error())
	}
	if s[0] == 'D' {
		amt = amt.Neg()
	}
	return &balance{amt: amt, ccy: ccy, date: date}, nil
}

// floorLimit reads :34F:, "EURD5," or "EUR5,": the interim report's currency.
func (r *reader) floorLimit() error {
	s := r.joined()
	if len(s) < 4 || !isCurrency(s[:3]) {
		return r.failField(fmt.Sprintf("unreadable floor limit %q", clip(s)))
	}
	rest := s[3:]
	if rest[0] == 'C' || rest[0] == 'D' {
		rest = rest[1:]
	}
	if _, err := parseAmount(rest, r.lim.MaxAmountDigits); err != nil {
		return r.failField(err.Error())
	}
	m := r.msg
	if m.ccy == "" {
		m.ccy = s[:3]
	} else if m.ccy != s[:3] {
		return r.failField(fmt.Sprintf("floor limit in %s, the report is in %s", s[:3], m.ccy))
	}
	m.floor = true
	return nil
}

// dateTime reads :13D:, "2607211330+0200".
func (r *reader) dateTime() error {
	s := r.joined()
	t, err := time.Parse("0601021504-0700", s)
	if err != nil {
		return r.failField(fmt.Sprintf("unreadable date-time %q (want YYMMDDhhmm and an offset ±hhmm)", clip(s)))
	}
	r.msg.createdRaw, r.msg.created = s, t.Format(time.RFC3339)
	return nil
}

// total reads :90D:/:90C:, "1EUR200,50": number of entries, currency, sum.
func (r *reader) total() error {
	s := r.joined()
	i := 0
	for i < len(s) && i < 6 && isDigit(s[i]) {
		i++
	}
	if i == 0 || len(s) < i+4 || !isCurrency(s[i:i+3]) {
		return r.failField(fmt.Sprintf("unreadable total %q (want a count, currency, amount)", clip(s)))
	}
	n, _ := strconv.Atoi(s[:i])
	amt, err := parseAmount(s[i+3:], r.lim.MaxAmountDigits)
	if err != nil {
		return r.failField(err.Error())
	}
	t := &total{n: n, amt: amt, ccy: s[i : i+3]}
	if r.tag == "90D" {
		r.msg.totalD = t
	} else {
		r.msg.totalC = t
	}
	return nil
}

// accountID is :25: as recon names the account: the IBAN when the field
// holds one (alone, behind a BIC and "/", or followed by its currency code
// as some banks write it), else the field as the bank wrote it, spaces
// removed (a domestic account: "50880050/0194787400"). recon does not
// convert a domestic account number to an IBAN (national rules make that
// conversion inexact), so such an account meets the camt sightings of the
// same account only if they name it the same way.
func accountID(s string) string {
	n := strings.Join(strings.Fields(s), "")
	cands := []string{n}
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		cands = append(cands, n[i+1:])
	}
	for _, c := range cands {
		if recon.ValidIBAN(c) == nil {
			return recon.NormalizeIBAN(c)
		}
		if len(c) > 3 && isCurrency(c[len(c)-3:]) && recon.ValidIBAN(c[:len(c)-3]) == nil {
			return recon.NormalizeIBAN(c[:len(c)-3])
		}
	}
	return n
}

func isCurrency(c string) bool {
	return len(c) == 3 && isUpper(c[0]) && isUpper(c[1]) && isUpper(c[2])
}

// parseAmount reads a SWIFT amount exactly: digits with at most one decimal
// comma ("473,17", "5,", ",50", "1234"), or one decimal point in place of
// the comma; no sign, no thousands separator, no spaces.
func parseAmount(s string, maxDigits int) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Decimal{}, fmt.Errorf("empty amount")
	}
	if len(s) > 32 {
		return decimal.Decimal{}, fmt.Errorf("amount %.20q… too long", s)
	}
	sep := ","
	if !strings.Contains(s, ",") && strings.Count(s, ".") == 1 {
		sep = "." // a decimal point where SWIFT has a comma (Rabobank exports)
	}
	intPart, frac, _ := strings.Cut(s, sep)
	if intPart == "" && frac == "" {
		return decimal.Decimal{}, fmt.Errorf("amount %q has no digit", s)
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if !isDigit(part[i]) {
				return decimal.Decimal{}, fmt.Errorf("amount %q is not digits with a decimal comma", s)
			}
		}
	}
	if sig := len(strings.TrimLeft(intPart, "0")) + len(frac); sig > maxDigits {
		return decimal.Decimal{}, fmt.Errorf("amount %q has %d digits, more than MaxAmountDigits (%d)", s, sig, maxDigits)
	}
	if intPart == "" {
		intPart = "0"
	}
	if frac == "" {
		return decimal.NewFromString(intPart)
	}
	return decimal.NewFromString(intPart + "." + frac)
}

// yymmdd reads a SWIFT date. Years 80-99 are 1980-1999, the others
// 2000-2079. With clamp (value dates), a day past the month's end up to the
// 30th or 31st is the month's last day: German banks date by a 30-day
// month convention ("30 February").
func yymmdd(s string, clamp bool) (recon.Date, bool) {
	if len(s) != 6 {
		return "", false
	}
	for i := 0; i < 6; i++ {
		if !isDigit(s[i]) {
			return "", false
		}
	}
	y, _ := strconv.Atoi(s[:2])
	m, _ := strconv.Atoi(s[2:4])
	d, _ := strconv.Atoi(s[4:6])
	if y >= 80 {
		y += 1900
	} else {
		y += 2000
	}
	return date(y, m, d, clamp)
}

func date(y, m, d int, clamp bool) (recon.Date, bool) {
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return "", false
	}
	last := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if d > last {
		if !clamp {
			return "", false
		}
		d = last
	}
	return recon.Date(fmt.Sprintf("%04d-%02d-%02d", y, m, d)), true
}

// entryDate reads a :61: entry date (MMDD) in the year that puts it
// nearest its value date: a line valued 2 January may be booked on 31
// December.
func entryDate(mmdd string, value recon.Date) (recon.Date, bool) {
	m, err1 := strconv.Atoi(mmdd[:2])
	d, err2 := strconv.Atoi(mmdd[2:])
	if err1 != nil || err2 != nil {
		return "", false
	}
	v, err := time.Parse(time.DateOnly, string(value))
	if err != nil {
		return "", false
	}
	var best recon.Date
	bestDist := time.Duration(1<<63 - 1)
	for _, y := range []int{v.Year() - 1, v.Year(), v.Year() + 1} {
		dt, ok := date(y, m, d, true)
		if !ok {
			continue
		}
		t, _ := time.Parse(time.DateOnly, string(dt))
		dist := t.Sub(v)
		if dist < 0 {
			dist = -dist
		}
		if dist < bestDist {
			best, bestDist = dt, dist
		}
	}
	return best, best != ""
}

// clip shortens a field's text for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
