package iso20022

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// ParseAmount reads an amount exactly from its text: digits, at most one
// '.', at most MaxFractionDigits fraction digits, and at most maxDigits
// digits in the value (integer digits without leading zeros plus fraction
// digits, so "1e9999" could not pass even if exponents were read). Signs,
// exponents, commas and spaces inside are refused. It is the one amount
// parser of recon's input: ISO 20022 files, the producer API and bank
// webhooks all read amounts with it.
func ParseAmount(s string, maxDigits int) (decimal.Decimal, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return decimal.Decimal{}, fmt.Errorf("empty amount")
	}
	if len(s) > 64 {
		return decimal.Decimal{}, fmt.Errorf("amount %.20q… too long", s)
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return decimal.Decimal{}, fmt.Errorf("amount %q is not a decimal number", s)
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return decimal.Decimal{}, fmt.Errorf("amount %q is not a plain decimal (no sign, exponent or separators allowed)", s)
			}
		}
	}
	if len(frac) > MaxFractionDigits {
		return decimal.Decimal{}, fmt.Errorf("amount %q has %d fraction digits, more than %d (ISO 20022 fractionDigits)", s, len(frac), MaxFractionDigits)
	}
	sig := len(strings.TrimLeft(intPart, "0")) + len(frac)
	if sig > maxDigits {
		return decimal.Decimal{}, fmt.Errorf("amount %q has %d digits, more than MaxAmountDigits (%d)", s, sig, maxDigits)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("amount %q: %v", s, err)
	}
	return d, nil
}

// validCurrency reports whether c looks like an ISO 4217 code.
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// parseAmount is ParseAmount, as the readers call it.
func parseAmount(s string, maxDigits int) (decimal.Decimal, error) { return ParseAmount(s, maxDigits) }
