package bankfile

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/matcher"
)

func TestDetect(t *testing.T) {
	cfonb01 := "0130004    00003EUR2 00012345678  050126" + strings.Repeat(" ", 50) + "0000000010000{" + strings.Repeat(" ", 16)
	for _, tc := range []struct {
		name, head string
		want       Format
	}{
		{"xml", `<?xml version="1.0"?><Document/>`, ISO20022},
		{"xml after a BOM and blanks", "\xEF\xBB\xBF\r\n  <Document/>", ISO20022},
		{"utf-16", "\xFF\xFE<\x00", ISO20022},
		{"mt940", ":20:STARTUMS\r\n:25:X\r\n", SWIFT},
		{"mt940 in its envelope", "{1:F01X}{2:I940XN}{4:\r\n:20:R\r\n", SWIFT},
		{"mt940 envelope on one line", "\x01{1:F01X}{2:I940XN}{4::20:R\n", SWIFT},
		{"mt940 after a bank header", "ABNANL2A\n940\nABNANL2A\n:20:ABN AMRO BANK NV\n", SWIFT},
		{"mt940 after a dash", "-\n:20:STARTUMSE\n", SWIFT},
		{"cfonb", cfonb01 + "\r\n", CFONB120},
		{"cfonb starting with a movement", "04" + cfonb01[2:], CFONB120},
		{"csv", "date;amount\n2026-01-01;10\n", Unknown},
		{"json", `{"id": 1}`, Unknown},
		{"empty", "", Unknown},
		{"a :20: inside a line", "note :20: x\n", Unknown},
	} {
		if got := Detect([]byte(tc.head)); got != tc.want {
			t.Errorf("%s: Detect = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUnknownFormatNamesWhatIsExpected(t *testing.T) {
	_, _, err := ReadAll(strings.NewReader("date;amount\n"), "x.csv", DefaultLimits())
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "MT940") || !strings.Contains(err.Error(), "CFONB 120") || !strings.Contains(err.Error(), "camt.052") {
		t.Fatalf("got %v", err)
	}
}

// The same credit transfer seen as an MT940 line, a CFONB 120 movement and
// a camt.054 entry: the MT940 and camt.054 sightings share the bank
// reference and get one identity key; the CFONB one carries only the
// end-to-end id (RCN), which the matcher links to the others. One movement,
// booked once.
func TestIdentityAcrossFormats(t *testing.T) {
	const e2e, bankRef = "E2E-LOAN-42-0001", "BK20260106A1"
	cf := cfonbRecord("01", "0000000001000{", "", "", "") +
		cfonbRecord("04", "0000000000250{", "VIR SEPA MAX MUSTERMANN", "", "") +
		cfonbRecord("05", "", "", "RCN", e2e) +
		cfonbRecord("07", "0000000001250{", "", "", "")
	cfRecs := read(t, "day.cfonb", cf)
	iban := cfRecs[0].AccountIBAN
	if recon.ValidIBAN(iban) != nil {
		t.Fatalf("CFONB account %q is not an IBAN", iban)
	}
	mt := fmt.Sprintf(":20:R1\n:25:%s\n:28C:1/1\n:60F:C260105EUR100,00\n:61:2601060106C25,00NTRFNONREF//%s\n:86:166?00SEPA-GUTSCHRIFT?20EREF+%s?21SVWZ+Rate LOAN-42\n:62F:C260106EUR125,00\n-\n", iban, bankRef, e2e)
	camt := fmt.Sprintf(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>N-1</MsgId><CreDtTm>2026-01-06T09:00:00</CreDtTm></GrpHdr>
<Ntfctn><Id>N-1-1</Id><Acct><Id><IBAN>%s</IBAN></Id></Acct>
<Ntry><Amt Ccy="EUR">25.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-01-06</Dt></BookgDt>
<AcctSvcrRef>%s</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>%s</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>
</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>`, iban, bankRef, e2e)
	mtRec, camtRec, cfRec := read(t, "day.sta", mt)[0], read(t, "n.xml", camt)[0], cfRecs[0]
	if mtRec.ID != camtRec.ID {
		t.Errorf("MT940 %s and camt.054 %s: one movement, two identity keys", mtRec.ID, camtRec.ID)
	}
	if cfRec.EndToEndID != e2e || mtRec.EndToEndID != e2e {
		t.Errorf("end-to-end ids: CFONB %q, MT940 %q", cfRec.EndToEndID, mtRec.EndToEndID)
	}
	r := matcher.NewRouter(matcher.NewLoans())
	for i, s := range []recon.BankTransaction{cfRec, mtRec, camtRec} {
		d, _, _ := r.Route(s)
		if dup := d.Outcome == recon.Duplicate; dup != (i > 0) || d.Rule == matcher.RuleIdentityConflict {
			t.Errorf("%s sighting: %+v; want the first new and the others duplicates of it", s.Source, d)
		}
	}
}

func read(t *testing.T, name, in string) []recon.BankTransaction {
	t.Helper()
	recs, _, err := ReadAll(strings.NewReader(in), name, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var txns []recon.BankTransaction
	for _, r := range recs {
		if tx, ok := r.(recon.BankTransaction); ok {
			txns = append(txns, tx)
		}
	}
	if len(txns) == 0 {
		t.Fatalf("%s: no transaction", name)
	}
	return txns
}

// cfonbRecord builds one 120-character record of account 30004/00003/00012345678.
func cfonbRecord(code, amount, label, qualifier, info string) string {
	b := []byte(strings.Repeat(" ", 120))
	put := func(col int, s string) { copy(b[col-1:], s) }
	put(1, code)
	put(3, "30004")
	put(12, "00003")
	put(17, "EUR2")
	put(22, "00012345678")
	put(35, "060126")
	if code == "04" {
		put(43, "060126")
		put(49, label)
	}
	if code == "05" {
		put(46, qualifier)
		put(49, info)
	} else {
		put(91, amount)
	}
	return string(b) + "\r\n"
}
