package collect

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/reconhq/recon"
)

// businessDay reports whether d is a TARGET2 settlement day: not a
// weekend, 1 January, Good Friday, Easter Monday, 1 May, 25 or 26 December.
// SEPA collections and transfers settle on these days only.
func businessDay(d time.Time) bool {
	switch d.Weekday() {
	case time.Saturday, time.Sunday:
		return false
	}
	m, day := d.Month(), d.Day()
	switch {
	case m == time.January && day == 1, m == time.May && day == 1,
		m == time.December && (day == 25 || day == 26):
		return false
	}
	easter := easterSunday(d.Year())
	return !sameDay(d, easter.AddDate(0, 0, -2)) && !sameDay(d, easter.AddDate(0, 0, 1))
}

func sameDay(a, b time.Time) bool {
	return a.Year() == b.Year() && a.YearDay() == b.YearDay()
}

// easterSunday is the Gregorian Easter (the anonymous algorithm).
func easterSunday(y int) time.Time {
	a, b, c := y%19, y/100, y%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(y, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}

// onOrAfter is the first business day on or after d.
func onOrAfter(d time.Time) time.Time {
	for !businessDay(d) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// nextBusinessDay is the first business day strictly after d.
func nextBusinessDay(d time.Time) time.Time {
	return onOrAfter(d.AddDate(0, 0, 1))
}

func parseDate(d recon.Date) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, string(d))
	return t, err == nil
}

func dateOf(t time.Time) recon.Date { return recon.Date(t.Format(time.DateOnly)) }

// endToEndID is "<prefix><loan>-<YYYYMMDD>[-<attempt>]" when that fits the
// 35 characters of an EndToEndId in SEPA's restricted id characters, else
// "RC" + a hash of the same parts: deterministic either way, so building a
// batch twice gives the same ids.
func endToEndID(prefix, loanID string, due recon.Date, attempt int) string {
	id := prefix + loanID
	if due != "" {
		id += "-" + strings.ReplaceAll(string(due), "-", "")
	}
	if attempt > 1 {
		id += "-" + strconv.Itoa(attempt)
	}
	if len(id) <= 35 && sepaID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(prefix + "\x00" + loanID + "\x00" + string(due) + "\x00" + strconv.Itoa(attempt)))
	return "RC" + hex.EncodeToString(sum[:])[:30]
}

// sepaID reports whether s uses only the characters EPC allows in
// references (letters, digits and / - ? : ( ) . , ' +; no space), without
// a leading or trailing "/" and without "//".
func sepaID(s string) bool {
	if s == "" || s[0] == '/' || s[len(s)-1] == '/' || strings.Contains(s, "//") {
		return false
	}
	for _, c := range s {
		if c == ' ' || !sepaChar(c) {
			return false
		}
	}
	return true
}

func sepaChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.ContainsRune("/-?:().,'+ ", c)
}

var latin = strings.NewReplacer(
	"à", "a", "â", "a", "ä", "a", "á", "a", "ã", "a", "å", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
	"í", "i", "ì", "i", "î", "i", "ï", "i", "ñ", "n", "ó", "o", "ò", "o", "ô", "o", "ö", "o", "õ", "o", "ø", "o",
	"ú", "u", "ù", "u", "û", "u", "ü", "u", "ý", "y", "ÿ", "y", "œ", "oe", "æ", "ae", "ß", "ss",
	"À", "A", "Â", "A", "Ä", "A", "Á", "A", "Ç", "C", "É", "E", "È", "E", "Ê", "E", "Ë", "E", "Î", "I", "Ï", "I",
	"Ñ", "N", "Ô", "O", "Ö", "O", "Ù", "U", "Û", "U", "Ü", "U", "Œ", "OE", "Æ", "AE", "&", "+", "_", "-",
)

// sepaText maps s into the EPC basic Latin character set (accents
// dropped, anything else a space) and cuts it to max characters.
func sepaText(s string, max int) string {
	s = latin.Replace(s)
	var b strings.Builder
	n := 0
	for _, c := range s {
		if n == max {
			break
		}
		if !sepaChar(c) {
			c = ' '
		}
		b.WriteRune(c)
		n++
	}
	return strings.TrimSpace(b.String())
}
