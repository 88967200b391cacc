package ingest

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/matcher"
)

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	loanIDRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// maxScale and maxDigits bound amounts from outside (cents and beyond are
// allowed, as ISO 20022 allows five fraction digits); maxDigits counts the
// digits of the value, as iso20022.ParseAmount does.
const (
	maxScale  = 5
	maxDigits = 18
)

func checkAmount(field string, a interface {
	Exponent() int32
	NumDigits() int
	IsNegative() bool
}) error {
	if a.Exponent() < -maxScale {
		return fmt.Errorf("%s has more than %d fraction digits", field, maxScale)
	}
	if n := valueDigits(a.NumDigits(), a.Exponent()); n > maxDigits {
		return fmt.Errorf("%s has %d digits, more than %d", field, n, maxDigits)
	}
	if a.IsNegative() {
		return fmt.Errorf("%s is negative", field)
	}
	return nil
}

// valueDigits is how many digits an amount's value is written with (integer
// and fraction digits), given its coefficient's digits and its exponent:
// 1e9999 is one coefficient digit but a 10,000-digit value.
func valueDigits(coefficient int, exp int32) int64 {
	if exp >= 0 {
		return int64(coefficient) + int64(exp)
	}
	return max(int64(coefficient), -int64(exp))
}

// ValidateLoan checks a loan from a producer.
func ValidateLoan(l recon.Loan) error {
	switch {
	case !loanIDRE.MatchString(l.LoanID):
		return fmt.Errorf("loan_id %q must be 1-64 letters, digits, '.', '_' or '-'", l.LoanID)
	case l.BorrowerID != "" && !loanIDRE.MatchString(l.BorrowerID):
		return fmt.Errorf("borrower_id %q must be 1-64 letters, digits, '.', '_' or '-'", l.BorrowerID)
	case l.VirtualIBAN == "" && l.BorrowerID == "":
		return fmt.Errorf("virtual_iban is required (or borrower_id: the borrower's virtual IBAN then serves the loan)")
	case !currencyRE.MatchString(l.Currency):
		return fmt.Errorf("currency %q is not an ISO 4217 code", l.Currency)
	case len(l.Schedule) > 1200:
		return fmt.Errorf("schedule has %d instalments, the limit is 1200", len(l.Schedule))
	}
	if err := checkIBAN("virtual_iban", l.VirtualIBAN, l.BorrowerID != ""); err != nil {
		return err
	}
	if l.Borrower != nil {
		if err := checkIBAN("borrower.iban", l.Borrower.IBAN, true); err != nil {
			return err
		}
		if err := checkIBAN("borrower.virtual_iban", l.Borrower.VirtualIBAN, true); err != nil {
			return err
		}
	}
	if err := checkAmount("principal", l.Principal); err != nil {
		return err
	}
	for i, in := range l.Schedule {
		if !in.DueDate.Valid() {
			return fmt.Errorf("schedule[%d].due_date %q is not YYYY-MM-DD", i, in.DueDate)
		}
		for _, f := range []struct {
			name string
			a    interface {
				Exponent() int32
				NumDigits() int
				IsNegative() bool
			}
		}{{"principal", in.Principal}, {"interest", in.Interest}, {"fees", in.Fees}} {
			if err := checkAmount(fmt.Sprintf("schedule[%d].%s", i, f.name), f.a); err != nil {
				return err
			}
		}
	}
	if err := matcher.CheckLoan(l); err != nil { // e.g. 1.005 EUR, 1e30
		return fmt.Errorf("the matcher cannot hold this loan exactly: %w", err)
	}
	return nil
}

// maxNameBytes bounds a borrower's name.
const maxNameBytes = 200

// ValidateBorrower checks a borrower from a producer.
func ValidateBorrower(b recon.Borrower) error {
	switch {
	case !loanIDRE.MatchString(b.ID):
		return fmt.Errorf("borrower_id %q must be 1-64 letters, digits, '.', '_' or '-'", b.ID)
	case len(b.Name) > maxNameBytes:
		return fmt.Errorf("name has %d bytes, the limit is %d", len(b.Name), maxNameBytes)
	}
	if err := checkIBAN("virtual_iban", b.VirtualIBAN, false); err != nil {
		return err
	}
	return checkIBAN("iban", b.IBAN, true)
}

// checkIBAN checks an IBAN field (recon.ValidIBAN): the registry's length
// for its country and the MOD 97-10 check digits, so that a typo is
// refused here rather than routing money nowhere. An empty optional field
// is fine.
func checkIBAN(field, iban string, optional bool) error {
	if iban == "" && optional {
		return nil
	}
	if err := recon.ValidIBAN(iban); err != nil {
		return fmt.Errorf("%s %q is not an IBAN: %w", field, trunc(iban), err)
	}
	return nil
}

// ValidateTransaction checks a normalized bank transaction.
func ValidateTransaction(t recon.BankTransaction) error {
	switch {
	case t.ID == "":
		return fmt.Errorf("no bank reference to derive an identity from (give bank_reference, end_to_end_id, transaction_id or id)")
	case t.Direction != recon.Credit && t.Direction != recon.Debit:
		return fmt.Errorf("direction %q must be credit or debit", t.Direction)
	case !currencyRE.MatchString(t.Currency):
		return fmt.Errorf("currency %q is not an ISO 4217 code", t.Currency)
	case !t.Amount.IsPositive():
		return fmt.Errorf("amount %s must be positive (direction says which way)", t.Amount)
	case t.BookingDate != "" && !t.BookingDate.Valid():
		return fmt.Errorf("booking_date %q is not YYYY-MM-DD", t.BookingDate)
	case t.ValueDate != "" && !t.ValueDate.Valid():
		return fmt.Errorf("value_date %q is not YYYY-MM-DD", t.ValueDate)
	case t.Status != recon.Booked && t.Status != recon.Pending && t.Status != recon.Info:
		return fmt.Errorf("status %q must be booked, pending or info", t.Status)
	}
	for _, f := range []struct {
		name, iban string
		optional   bool
	}{{"account_iban", t.AccountIBAN, false}, {"virtual_iban", t.VirtualIBAN, true}, {"counterparty_iban", t.CounterpartyIBAN, true}} {
		if err := checkIBAN(f.name, f.iban, f.optional); err != nil {
			return err
		}
	}
	return checkAmount("amount", t.Amount)
}

// demoteRF moves a creditor reference that says it is an ISO 11649 RF
// reference but fails its check digits into the remittance text, as the
// ISO 20022 reader does with a file's (ingest/iso20022, remittance): a
// mistyped reference is kept for a person to read but never routes money.
func demoteRF(t *recon.BankTransaction) {
	ref := strings.TrimSpace(t.CreditorReference)
	if !strings.HasPrefix(strings.ToUpper(ref), "RF") || recon.ValidRF(ref) == nil {
		return
	}
	t.CreditorReference = ""
	t.RemittanceInfo = strings.TrimSpace(t.RemittanceInfo + " " + ref)
}
