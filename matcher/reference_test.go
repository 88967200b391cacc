package matcher

import (
	"regexp"
	"testing"

	"github.com/reconhq/recon"
)

// A remittance token names a loan only when it matches the lender's loan
// reference format (Router.LoanReference); without one, any known loan id
// does, a short number included. Creditor references are not subject to
// it.
func TestLoanReferenceFormat(t *testing.T) {
	loans := borrowerLoans(t)
	if err := loans.Put(recon.Loan{LoanID: "42", VirtualIBAN: "DE00VIBA0000000042", Currency: "EUR", Principal: dec("10.00")}); err != nil {
		t.Fatal(err)
	}
	dashed := regexp.MustCompile(`^(?:B?L-[0-9]+)$`)
	caseless := regexp.MustCompile(`^(?i:L-[0-9]+)$`)
	for _, tc := range []struct {
		name       string
		format     *regexp.Regexp
		viban      string
		remittance string
		creditor   string
		rule, key  string // the routed rule and key
		loan       string // the loan named ("" for none)
	}{
		{"no format: a short number names loan 42", nil, "", "facture 42 mars", "", "remittance_text", "42", "42"},
		{"format: a short number names nothing", dashed, "", "facture 42 mars", "", "none", "suspense", ""},
		{"format: a reference in the format names its loan", dashed, "", "pret L-123 mars", "", "remittance_text", "L-123", "L-123"},
		{"no format: two loans named park", nil, "", "L300 et 42", "", "remittance_text", "suspense", ""},
		{"format: neither token is a reference", dashed, "", "L300 et 42", "", "none", "suspense", ""},
		{"format: only the reference counts", dashed, "", "L-123 facture 42", "", "remittance_text", "L-123", "L-123"},
		{"no format: lower case is looked up in upper case", nil, "", "pret l-123", "", "remittance_text", "L-123", "L-123"},
		{"format is case-sensitive", dashed, "", "pret l-123", "", "none", "suspense", ""},
		{"a (?i) format takes lower case", caseless, "", "pret l-123", "", "remittance_text", "L-123", "L-123"},
		{"creditor reference is not subject to the format", dashed, "", "", "RF18L300", "creditor_reference", "L300", "L300"},
		{"borrower: a token in the format names their loan", dashed, borrowerVIBAN, "BL-2", "", "virtual_iban", BorrowerKey("B-1"), "BL-2"},
		{"borrower: no reference in the format: allocated", regexp.MustCompile(`^(?:X-[0-9]+)$`), borrowerVIBAN, "BL-2", "", "virtual_iban", BorrowerKey("B-1"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRouter(loans)
			r.LoanReference = tc.format
			tx := credit("10.00", tc.viban, "E2E-"+tc.name)
			tx.RemittanceInfo, tx.CreditorReference = tc.remittance, tc.creditor
			tx.ID = recon.IdentityKey(tx)
			_, rt, _ := r.Route(tx)
			if rt == nil || rt.Rule != tc.rule || rt.Key != tc.key || rt.LoanID != tc.loan {
				t.Fatalf("routed %+v, want rule %q key %q loan %q", rt, tc.rule, tc.key, tc.loan)
			}
		})
	}
}
