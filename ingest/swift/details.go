package swift

import (
	"strings"

	"github.com/reconhq/recon"
)

// info is what an :86: says about its statement line.
type info struct {
	endToEnd, mandate, creditorRef string
	remittance                     string
	name, iban, bic                string
	returnReason                   string
}

// details reads the :86: lines of a statement line in the dialect they are
// written in: German ?-subfields, Dutch /KEY/ structures, or free text.
func details(lines []string) info {
	if len(lines) == 0 {
		return info{}
	}
	var whole strings.Builder
	for _, l := range lines {
		whole.WriteString(strings.TrimRight(l, " "))
	}
	s := whole.String()
	if sep, ok := germanSeparator(s); ok {
		return german(s, sep)
	}
	if d, ok := dutch(s); ok {
		return d
	}
	return info{remittance: freeText(lines)}
}

// freeText joins lines as they wrapped: a line of SWIFT's full width (65
// characters, the tag included on the first) was cut and continues on the
// next; a shorter one ended.
func freeText(lines []string) string {
	var b strings.Builder
	for i, l := range lines {
		t := strings.Join(strings.Fields(l), " ")
		if t == "" {
			continue
		}
		if b.Len() > 0 && !wrapped(lines, i-1) {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String()
}

func wrapped(lines []string, i int) bool {
	w := len(strings.TrimRight(lines[i], " "))
	if i == 0 {
		w += len(":86:")
	}
	return w >= 65
}

// germanSeparator recognises the ZKA/DK structure: a three-digit business
// code, then subfields "?00", "?20"... (the separator is "?" at almost every
// bank; a few use another sign).
func germanSeparator(s string) (byte, bool) {
	if len(s) < 7 || !allDigits(s[:3]) {
		return 0, false
	}
	sep := s[3]
	if sep != '?' && sep != '/' && sep != '>' && sep != '!' {
		return 0, false
	}
	return sep, isDigit(s[4]) && isDigit(s[5])
}

// sepaKeys are the SEPA qualifiers of the German remittance subfields.
var sepaKeys = []string{"EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+", "IBAN+", "BIC+", "COAM+", "OAMT+", "SQTP+", "PURP+"}

func german(s string, sep byte) info {
	var d info
	var remit []string
	sub := map[string]string{}
	for _, part := range strings.Split(s[3:], string(sep)) {
		if len(part) < 2 || !isDigit(part[0]) || !isDigit(part[1]) {
			continue // text before the first subfield, or a stray separator
		}
		code, val := part[:2], part[2:]
		switch {
		case code >= "20" && code <= "29", code >= "60" && code <= "63":
			remit = append(remit, val)
		default:
			sub[code] = sub[code] + val
		}
	}
	d.name = strings.TrimSpace(strings.TrimSpace(sub["32"]) + " " + strings.TrimSpace(sub["33"]))
	if v := strings.TrimSpace(sub["31"]); recon.ValidIBAN(v) == nil {
		d.iban = recon.NormalizeIBAN(v)
	}
	if v := strings.TrimSpace(sub["30"]); isBIC(v) {
		d.bic = v
	}
	joined := strings.Join(remit, "")
	if !hasSEPAKey(joined) {
		var words []string
		for _, l := range remit {
			if t := strings.Join(strings.Fields(l), " "); t != "" {
				words = append(words, t)
			}
		}
		d.remittance = strings.Join(words, " ")
		return d
	}
	var free []string
	for key, val := range splitKeys(joined) {
		val = strings.TrimSpace(val)
		switch key {
		case "":
			if val != "" {
				free = append(free, val)
			}
		case "EREF+":
			if !strings.EqualFold(val, "NOTPROVIDED") {
				d.endToEnd = val
			}
		case "MREF+":
			d.mandate = val
		case "SVWZ+":
			free = append(free, val)
		case "IBAN+":
			if d.iban == "" && recon.ValidIBAN(val) == nil {
				d.iban = recon.NormalizeIBAN(val)
			}
		case "BIC+":
			if d.bic == "" && isBIC(val) {
				d.bic = val
			}
		case "ABWA+", "ABWE+":
			if d.name == "" {
				d.name = val
			}
		}
	}
	d.remittance = strings.Join(free, " ")
	return d
}

func hasSEPAKey(s string) bool {
	for _, k := range sepaKeys {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// splitKeys yields the text before the first SEPA qualifier (key "") and
// each qualifier with its value, in order.
func splitKeys(s string) func(yield func(string, string) bool) {
	return func(yield func(string, string) bool) {
		key := ""
		for {
			at, next := -1, ""
			for _, k := range sepaKeys {
				if i := strings.Index(s, k); i >= 0 && (at < 0 || i < at) {
					at, next = i, k
				}
			}
			if at < 0 {
				yield(key, s)
				return
			}
			if !yield(key, s[:at]) {
				return
			}
			key, s = next, s[at+len(next):]
		}
	}
}

// dutchKeys are the keys of the Dutch SEPA :86: structure (ING, ABN AMRO,
// Rabobank, Triodos, Knab...).
var dutchKeys = map[string]bool{
	"TRTP": true, "EREF": true, "REMI": true, "IBAN": true, "BIC": true, "NAME": true, "CNTP": true,
	"MARF": true, "CSID": true, "ORDP": true, "BENM": true, "ID": true, "ADDR": true, "RTRN": true,
	"PREF": true, "ISDT": true, "SVCL": true, "PURP": true, "FX": true, "OAMT": true, "CHGS": true,
	"ULTC": true, "ULTD": true, "ULTB": true, "BUSP": true, "TRCD": true, "CDTRREFTP": true,
	"CDTRREF": true, "EXCH": true, "COAM": true, "RTYP": true, "ACCW": true,
}

// dutch reads "/EREF/...//REMI/.../CNTP/IBAN/BIC/NAME/CITY/": a value runs
// from its key to the next known key.
func dutch(s string) (info, bool) {
	type kv struct{ key, val string }
	var kvs []kv
	start, key := -1, ""
	for i := 0; i < len(s); i++ {
		if s[i] != '/' {
			continue
		}
		j := strings.IndexByte(s[i+1:], '/')
		if j < 0 {
			break
		}
		k := s[i+1 : i+1+j]
		if !dutchKeys[k] {
			continue
		}
		if start >= 0 {
			kvs = append(kvs, kv{key, s[min(start, i):i]}) // "/RTRN/REMI/": RTRN is empty
		}
		key, start = k, i+j+2
		i += j
	}
	if start < 0 {
		return info{}, false
	}
	kvs = append(kvs, kv{key, s[start:]})
	var d info
	for _, p := range kvs {
		v := strings.TrimSpace(strings.Trim(p.val, "/ "))
		switch p.key {
		case "EREF":
			if !strings.EqualFold(v, "NOTPROVIDED") {
				d.endToEnd = v
			}
		case "MARF":
			d.mandate = v
		case "REMI":
			d.remittance, d.creditorRef = remi(v)
		case "NAME":
			if d.name == "" {
				d.name = v
			}
		case "IBAN":
			if recon.ValidIBAN(v) == nil {
				d.iban = recon.NormalizeIBAN(v)
			}
		case "BIC":
			if isBIC(v) {
				d.bic = v
			}
		case "CNTP": // IBAN/BIC/name/city
			f := strings.Split(p.val, "/")
			if len(f) > 0 && recon.ValidIBAN(f[0]) == nil {
				d.iban = recon.NormalizeIBAN(f[0])
			}
			if len(f) > 1 && isBIC(f[1]) {
				d.bic = f[1]
			}
			if len(f) > 2 && strings.TrimSpace(f[2]) != "" {
				d.name = strings.TrimSpace(f[2])
			}
		case "RTRN":
			d.returnReason = v
		}
	}
	return d, true
}

// remi reads a /REMI/ value: "USTD//text/", "STRD/CUR/reference/", or text.
func remi(v string) (text, ref string) {
	switch {
	case strings.HasPrefix(v, "USTD//"):
		return strings.TrimSpace(strings.TrimSuffix(v[6:], "/")), ""
	case strings.HasPrefix(v, "STRD/CUR/"):
		ref = strings.TrimSpace(strings.Trim(v[9:], "/"))
		if strings.HasPrefix(strings.ToUpper(ref), "RF") && recon.ValidRF(ref) != nil {
			return ref, ""
		}
		return "", ref
	}
	return v, ""
}

// isBIC: 4 letters (bank), 2 letters (country), 2 letters or digits
// (location), and optionally 3 for the branch.
func isBIC(s string) bool {
	if len(s) != 8 && len(s) != 11 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i < 6 && !isUpper(c) || i >= 6 && !isUpper(c) && !isDigit(c) {
			return false
		}
	}
	return true
}
