package recon_test

import (
	"strings"
	"testing"

	"github.com/reconhq/recon"
)

func TestValidIBAN(t *testing.T) {
	for _, tc := range []struct {
		in, err string // err: "" when valid, else a part of the error
	}{
		{"DE89370400440532013000", ""},
		{"de89 3704 0044 0532 0130 00", ""}, // normalized first
		{"FR14 2004 1010 0505 0001 3M02 606", ""},
		{"FR7630001007960000000000099", "do not verify"}, // issue 15's example: a shape, not an IBAN
		{"GB29NWBK60161331926819", ""},
		{"NL91ABNA0417164300", ""},
		{"BE68539007547034", ""},
		{"NO9386011117947", ""},                          // the shortest
		{"LC55HEMM000100010012001200023015", ""},         // the longest but one
		{"MT84MALT011000012345MTLCAST001S", ""},          // letters in the account
		{"CH9300762011623852957", ""},                    // not SEPA-EU, in the registry
		{"DE89370400440532013001", "do not verify"},      // last digit changed
		{"DE98370400440532013000", "do not verify"},      // check digits swapped
		{"DE8937040044053201300", "has 21 characters"},   // one short
		{"DE893704004405320130000", "has 23 characters"}, // one long
		{"XX89370400440532013000", `country "XX"`},
		{"1289370400440532013000", `country "12"`},
		{"DEAB370400440532013000", "not two digits"},
		{"DE0037040044053201300X", "out of range"},
		{"DE89370400440532013-00", `character "-" at position 20`},
		{"DE89370400440532013ä0", "not a letter or a digit"},
		{"", "too short"},
		{"DE8", "too short"},
	} {
		err := recon.ValidIBAN(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ValidIBAN(%q) = %v, want nil", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ValidIBAN(%q) = %v, want an error with %q", tc.in, err, tc.err)
		}
	}
}

func TestIBANFor(t *testing.T) {
	for _, tc := range []struct{ country, bban, want string }{
		{"DE", "370400440532013000", "DE89370400440532013000"},
		{"fr", "2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"},
		{"GB", "NWBK60161331926819", "GB29NWBK60161331926819"},
		{"NO", "86011117947", "NO9386011117947"},
	} {
		if got := recon.IBANFor(tc.country, tc.bban); got != tc.want {
			t.Errorf("IBANFor(%q, %q) = %s, want %s", tc.country, tc.bban, got, tc.want)
		}
	}
}

func TestValidRF(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"RF18539007547034", ""},
		{"RF18 5390 0754 7034", ""},
		{"rf18539007547034", ""},
		{"RF712348231", ""},
		{"RF19539007547034", "do not verify"},
		{"RF00ABC123", "do not verify"},
		{"RF", "has 2 characters"},
		{"RF18539007547034ÄÖ", "not a letter or a digit"},
		{recon.RFFor("ABCDEFGHIJ0123456789K"), ""}, // 21 characters after the check digits
		{recon.RFFor("ABCDEFGHIJ0123456789KL"), "has 26 characters"},
		{"210000000003139471430", `does not start with "RF"`},
		{"RFAB12", "not two digits"},
	} {
		err := recon.ValidRF(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ValidRF(%q) = %v, want nil", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ValidRF(%q) = %v, want an error with %q", tc.in, err, tc.err)
		}
	}
	if ref := recon.RFFor("539007547034"); ref != "RF18539007547034" {
		t.Errorf("RFFor = %s, want RF18539007547034", ref)
	}
}

// FuzzIBAN: an IBAN IBANFor computes is valid, and changing one of its
// characters for another of the same kind (digit for digit, letter for
// letter: the kinds whose substitution MOD 97-10 always catches) makes it
// invalid.
func FuzzIBAN(f *testing.F) {
	f.Add(uint8(0), "370400440532013000", uint8(3), uint8(1))
	f.Add(uint8(25), "2004101005050001 3M02606", uint8(20), uint8(7))
	f.Add(uint8(90), "", uint8(0), uint8(0))
	countries := make([]string, 0, 100)
	for c := 'A'; c <= 'Z'; c++ {
		for d := 'A'; d <= 'Z'; d++ {
			if cc := string([]rune{c, d}); recon.IBANLength(cc) > 0 {
				countries = append(countries, cc)
			}
		}
	}
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	f.Fuzz(func(t *testing.T, ci uint8, seed string, pos, delta uint8) {
		cc := countries[int(ci)%len(countries)]
		// The BBAN: seed's bytes read as letters and digits, padded to
		// the country's length.
		bban := make([]byte, recon.IBANLength(cc)-4)
		for i := range bban {
			b := byte(i)
			if i < len(seed) {
				b = seed[i]
			}
			bban[i] = alnum[int(b)%len(alnum)]
		}
		iban := recon.IBANFor(cc, string(bban))
		if err := recon.ValidIBAN(iban); err != nil {
			t.Fatalf("ValidIBAN(IBANFor(%s, %s) = %s): %v", cc, bban, iban, err)
		}
		b := []byte(iban)
		i := int(pos) % len(b)
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			b[i] = '0' + (c-'0'+1+delta%9)%10
		default:
			b[i] = 'A' + (c-'A'+1+delta%25)%26
		}
		if err := recon.ValidIBAN(string(b)); err == nil {
			t.Fatalf("ValidIBAN(%s) = nil: one character of %s changed (position %d)", b, iban, i+1)
		}
	})
}
