package projection

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// DateOf is an entry's accounting date: its effective date, else the UTC
// day it was booked.
func DateOf(e recon.Entry) recon.Date {
	if e.EffectiveDate.Valid() {
		return e.EffectiveDate
	}
	return recon.Date(e.BookedAt.UTC().Format(time.DateOnly))
}

// Movement is what one posting moved a bank account of the lender by.
type Movement struct {
	Account  string // the ledger account, "bank:<IBAN>"
	IBAN     string
	Currency string
	Delta    decimal.Decimal // debits minus credits
}

// BankMovements are the postings of e on the lender's bank accounts, in
// posting order, with e's accounting date: what a bank statement shows of
// e.
func BankMovements(e recon.Entry) (recon.Date, []Movement) {
	var out []Movement
	for _, p := range e.Postings {
		if a, ok := ledger.ParseAccount(p.Account); ok && a.Kind == ledger.KindBank {
			out = append(out, Movement{Account: p.Account, IBAN: a.ID, Currency: p.Currency, Delta: Signed(p)})
		}
	}
	if len(out) == 0 {
		return "", nil
	}
	return DateOf(e), out
}
