package e2e

import (
	"fmt"
	"testing"

	"github.com/reconhq/recon"
)

// The accounts the integration tests build (run ids of 1 to 9 digits) are
// IBANs ingest accepts. A unit test: it needs nothing running.
func TestIBANHelper(t *testing.T) {
	for _, run := range []string{"0", "7", "123456789", "999999999", fmt.Sprintf("%09d", 42)} {
		for _, c := range []struct{ country, bban string }{
			{"FR", "30001007" + pad(run, 15)},
			{"FR", fmt.Sprintf("5555500%d", 5) + pad(run, 15)},
			{"FR", pad(run, 9) + "00000000000000"},
			{"FR", fmt.Sprintf("%s%d%013d", pad(run, 9), 9, 1_000_000)},
			{"DE", fmt.Sprintf("%02d", 5) + pad(run, 16)},
			{"DE", "50010517" + pad(run, 10)},
		} {
			if err := recon.ValidIBAN(iban(c.country, c.bban)); err != nil {
				t.Errorf("iban(%s, %s): %v", c.country, c.bban, err)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("iban of a BBAN one digit short did not panic")
		}
	}()
	iban("FR", "30001007"+pad("1", 14))
}
