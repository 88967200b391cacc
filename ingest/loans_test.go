package ingest

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// A loan the matcher could not hold exactly is refused at the door, not
// accepted and then dropped while payments to its virtual IBAN go elsewhere.
func TestValidateLoanAsTheMatcherHoldsIt(t *testing.T) {
	base := recon.Loan{LoanID: "L-1", VirtualIBAN: "FR7630001007941234567890185", Currency: "EUR", Principal: decimal.RequireFromString("1000.00")}
	for _, c := range []struct {
		name, principal, want string
	}{
		{"cents", "1000.00", ""},
		{"a tenth of a cent", "1.005", "more fraction digits"},
		{"beyond the table", "9007199254740993", "too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := base
			l.Principal = decimal.RequireFromString(c.principal)
			err := ValidateLoan(l)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("ValidateLoan(principal %s) = %v, want %q", c.principal, err, c.want)
			}
		})
	}
}
