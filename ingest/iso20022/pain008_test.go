package iso20022

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// A payment initiation whose counts or control sums do not add up is
// refused, with the path of the wrong element.
func TestInitiationChecks(t *testing.T) {
	raw, err := os.ReadFile("testdata/pain008_v09.xml")
	if err != nil {
		t.Fatal(err)
	}
	good := string(raw)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"group count", "<NbOfTxs>3</NbOfTxs>", "<NbOfTxs>4</NbOfTxs>", "CstmrDrctDbtInitn/GrpHdr/NbOfTxs @139: NbOfTxs 4, but the file has 3 transactions"},
		{"group sum", "<CtrlSum>2000350.10</CtrlSum>", "<CtrlSum>2000350.11</CtrlSum>", "GrpHdr/CtrlSum"},
		{"payment info sum", "<CtrlSum>100.00</CtrlSum>", "<CtrlSum>100.01</CtrlSum>", `PmtInf/CtrlSum @378: CtrlSum 100.01, but the transactions of payment information "RCa5b85a15d779dae4-FRST-20261130" sum to 100`},
		{"exponent amount", `Ccy="EUR">100.00<`, `Ccy="EUR">1e+02<`, "not a plain decimal"},
		{"no end-to-end id", "<EndToEndId>L1-20261128</EndToEndId>", "", "without PmtId/EndToEndId"},
		{"bad signature date", "<DtOfSgntr>2026-01-10</DtOfSgntr>", "<DtOfSgntr>2026-13-10</DtOfSgntr>", "invalid date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.old, tc.new, 1)
			if bad == good {
				t.Fatalf("%q not in the file", tc.old)
			}
			_, _, err := ReadAll(strings.NewReader(bad), "bad.xml", DefaultLimits())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestPain001Versions(t *testing.T) {
	for _, tc := range []struct {
		version string
		read    bool
	}{{"001.03", false}, {"001.09", false}, {"001.10", true}, {"001.11", true}, {"001.03.ch.02", false}} {
		doc := `<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.` + tc.version + `"><CstmrCdtTrfInitn><GrpHdr><MsgId>M</MsgId><NbOfTxs>0</NbOfTxs></GrpHdr></CstmrCdtTrfInitn></Document>`
		_, _, err := ReadAll(strings.NewReader(doc), "p1", DefaultLimits())
		if got := err == nil; got != tc.read || (!tc.read && !errors.Is(err, ErrUnsupported)) {
			t.Errorf("pain.001.%s: %v", tc.version, err)
		}
	}
}
