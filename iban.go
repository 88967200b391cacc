package recon

import (
	"errors"
	"fmt"
	"strings"
)

// ibanLengths is the length of an IBAN in each country of the SWIFT IBAN
// registry (ISO 13616, as of 2024). Territories that use another
// country's IBAN are not listed: the French overseas departments and
// territories write FR, Åland writes FI, Jersey, Guernsey and the Isle of
// Man write GB.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
	"LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
	"MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
	"SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
	"YE": 30,
}

// IBANLength is the length of an IBAN of a country of the IBAN registry,
// 0 for a country that has none.
func IBANLength(country string) int { return ibanLengths[strings.ToUpper(country)] }

// ValidIBAN says why s is not an IBAN, or nil. It checks s as recon
// compares and stores it (NormalizeIBAN: upper case, no spaces): a country
// of the IBAN registry, that country's length, letters and digits only,
// check digits 02-98, and the ISO 7064 MOD 97-10 check (moved to the end
// and read as a number, the IBAN is 1 mod 97). The check catches every
// substitution of a digit for a digit or a letter for a letter, and all
// but about one in 97 substitutions of a digit for a letter; it does not
// check a country's BBAN structure nor that the account exists.
func ValidIBAN(s string) error {
	n := NormalizeIBAN(s)
	if len(n) < 4 {
		return fmt.Errorf("has %d characters, too short for an IBAN", len(n))
	}
	cc := n[:2]
	want, ok := ibanLengths[cc]
	switch {
	case !ok:
		return fmt.Errorf("country %q is not in the IBAN registry", cc)
	case len(n) != want:
		return fmt.Errorf("has %d characters; an IBAN of %s has %d", len(n), cc, want)
	case !isDigit(n[2]) || !isDigit(n[3]):
		return fmt.Errorf("check digits %q are not two digits", n[2:4])
	case n[2:4] == "00" || n[2:4] == "01" || n[2:4] == "99":
		return fmt.Errorf("check digits %s are out of range (02-98)", n[2:4])
	}
	rem, err := mod97(n)
	switch {
	case err != nil:
		return err
	case rem != 1:
		return errors.New("check digits do not verify (ISO 7064 MOD 97-10)")
	}
	return nil
}

// IBANFor is the IBAN of an account in a country, its check digits
// computed, for tests and generators. The BBAN must be letters and digits
// (spaces are dropped, letters upper-cased); IBANFor panics otherwise. It
// does not check the country nor the length: ValidIBAN does.
func IBANFor(country, bban string) string {
	country, bban = strings.ToUpper(country), NormalizeIBAN(bban)
	rem, err := mod97(country + "00" + bban)
	if err != nil {
		panic(fmt.Sprintf("recon.IBANFor(%q, %q): %v", country, bban, err))
	}
	return fmt.Sprintf("%s%02d%s", country, 98-rem, bban)
}

// ValidRF says why ref is not an ISO 11649 structured creditor reference
// ("RF", 2 check digits, 1 to 21 letters or digits; spaces are ignored,
// case too), or nil. Its check is the IBAN's: MOD 97-10 of the reference
// with its first four characters moved to the end is 1.
func ValidRF(ref string) error {
	n := NormalizeIBAN(ref)
	switch {
	case !strings.HasPrefix(n, "RF"):
		return errors.New(`does not start with "RF"`)
	case len(n) < 5 || len(n) > 25:
		return fmt.Errorf("has %d characters; an RF creditor reference has 5 to 25", len(n))
	case !isDigit(n[2]) || !isDigit(n[3]):
		return fmt.Errorf("check digits %q are not two digits", n[2:4])
	}
	rem, err := mod97(n)
	switch {
	case err != nil:
		return err
	case rem != 1:
		return errors.New("check digits do not verify (ISO 11649, MOD 97-10)")
	}
	return nil
}

// RFFor is the RF creditor reference of a lender's reference (1 to 21
// letters or digits), its check digits computed; it panics on other
// characters, as IBANFor.
func RFFor(body string) string { return IBANFor("RF", body) }

// mod97 is the ISO 7064 MOD 97-10 remainder of s with its first four
// characters moved to the end, letters read as 10 (A) to 35 (Z).
func mod97(s string) (int, error) {
	rem := 0
	for i := range len(s) {
		c := s[(i+4)%len(s)]
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A') + 10) % 97
		default:
			at := (i + 4) % len(s)
			return 0, fmt.Errorf("character %q at position %d is not a letter or a digit", s[at:at+1], at+1)
		}
	}
	return rem, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
