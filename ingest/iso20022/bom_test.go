package iso20022

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
)

const bomCamt = `<?xml version="1.0" encoding="%s"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>BOM-1</MsgId></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>FR7630001007940000000000106</IBAN></Id></Acct>
<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><AcctSvcrRef>REF-€-😀</AcctSvcrRef></Ntry>
</Stmt></BkToCstmrStmt></Document>`

func encode16(s string, little bool) []byte {
	var b bytes.Buffer
	put := func(u uint16) {
		if little {
			b.Write([]byte{byte(u), byte(u >> 8)})
		} else {
			b.Write([]byte{byte(u >> 8), byte(u)})
		}
	}
	put(0xFEFF)
	for _, u := range utf16.Encode([]rune(s)) {
		put(u)
	}
	return b.Bytes()
}

// A byte-order mark is read as encoding/xml reads it: UTF-8's is skipped,
// and a UTF-16 file with one is decoded, giving the records of its UTF-8
// twin.
func TestByteOrderMark(t *testing.T) {
	plain := fmt.Sprintf(bomCamt, "UTF-8")
	want, _, err := ReadAll(strings.NewReader(plain), "plain.xml", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		err  string
	}{
		{"UTF-8 BOM", append([]byte{0xEF, 0xBB, 0xBF}, plain...), ""},
		{"UTF-16LE BOM", encode16(fmt.Sprintf(bomCamt, "UTF-16"), true), ""},
		{"UTF-16BE BOM", encode16(fmt.Sprintf(bomCamt, "UTF-16"), false), ""},
		{"UTF-16 BOM, no declaration", encode16(plain[strings.Index(plain, "\n")+1:], true), ""},
		{"UTF-16 cut in a code unit", encode16(fmt.Sprintf(bomCamt, "UTF-16"), true)[:101], "invalid UTF-16"},
		{"UTF-16 without BOM", encode16(fmt.Sprintf(bomCamt, "UTF-16"), true)[2:], ""},
		{"UTF-8 BOM declaring UTF-16", append([]byte{0xEF, 0xBB, 0xBF}, fmt.Sprintf(bomCamt, "UTF-16")...), "UTF-16"},
	} {
		got, _, err := ReadAll(bytes.NewReader(tc.in), "f.xml", Limits{})
		switch {
		case tc.name == "UTF-16 without BOM":
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
			}
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case fmt.Sprint(got) != fmt.Sprint(want):
			t.Errorf("%s: records\n%v\nwant\n%v", tc.name, got, want)
		}
	}
}
