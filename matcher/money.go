package matcher

// Exact money in the hot state: minor units of a currency, converted
// without rounding at the boundary.

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// maxMinor bounds every amount in hot state, so sums of a loan's amounts
// never overflow int64.
const maxMinor = int64(1) << 53

// exponent is the number of fraction digits of a currency (ISO 4217);
// two unless listed.
func exponent(currency string) int32 {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000,
	100000000000, 1000000000000, 10000000000000, 100000000000000, 1000000000000000, 10000000000000000,
	100000000000000000, 1000000000000000000}

// errPrecision is an amount with more fraction digits than its currency.
type errPrecision struct {
	amount   decimal.Decimal
	currency string
}

func (e errPrecision) Error() string {
	return fmt.Sprintf("amount %s has more fraction digits than %s allows (%d)", e.amount, e.currency, exponent(e.currency))
}

// toMinor converts an exact amount to minor units of its currency. It
// refuses an amount with more fraction digits than the currency has (no
// rounding, ever) and one whose magnitude exceeds maxMinor.
func toMinor(d decimal.Decimal, currency string) (int64, error) {
	scale := exponent(currency)
	if d.NumDigits() > 18 {
		return 0, fmt.Errorf("amount %s is too large", d)
	}
	c, exp := d.CoefficientInt64(), d.Exponent()
	if v, ok := shiftMinor(c, exp, scale); ok {
		return v, nil
	}
	if shift := exp + scale; shift < 0 && (-shift > 18 || c%pow10[-shift] != 0) {
		return 0, errPrecision{d, currency}
	}
	return 0, fmt.Errorf("amount %s is too large", d)
}

// shiftMinor is coefficient c times 10^exp in minor units of a currency
// with scale fraction digits; false when that is finer than the minor
// unit or beyond maxMinor.
func shiftMinor(c int64, exp, scale int32) (int64, bool) {
	switch shift := exp + scale; {
	case shift >= 0:
		if shift > 18 || c != 0 && (c > maxMinor/pow10[shift] || c < -maxMinor/pow10[shift]) {
			return 0, false
		}
		c *= pow10[shift]
	default:
		if -shift > 18 || c%pow10[-shift] != 0 {
			return 0, false
		}
		c /= pow10[-shift]
	}
	return c, c <= maxMinor && c >= -maxMinor
}

// fromMinor is the exact decimal of v minor units.
func fromMinor(v int64, currency string) decimal.Decimal {
	return decimal.New(v, -exponent(currency))
}
