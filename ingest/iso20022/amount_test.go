package iso20022

import (
	"strings"
	"testing"
)

// FuzzAmount: no input panics; what is accepted is a plain decimal within
// the limits and reads back to the same value.
func FuzzAmount(f *testing.F) {
	for _, s := range []string{"1234.50", "0", "1e3", "-1", "9999999999999.99999", "1.123456", " 7.1 ", "00.10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseAmount(s, 18)
		if err != nil {
			return
		}
		if d.IsNegative() {
			t.Fatalf("%q accepted as negative %v", s, d)
		}
		if strings.ContainsAny(s, "eE+-,") {
			t.Fatalf("%q accepted with a sign, exponent or separator", s)
		}
		if d.Exponent() < -MaxFractionDigits {
			t.Fatalf("%q accepted with %d fraction digits", s, -d.Exponent())
		}
		back, err := ParseAmount(d.String(), 18)
		if err != nil || !back.Equal(d) {
			t.Fatalf("%q -> %v does not read back: %v %v", s, d, back, err)
		}
	})
}
