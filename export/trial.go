package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// TrialBalance is every account's debit and credit totals and balance
// (debits − credits) over the entries dated on or before At, per currency,
// with totals that tie: debits equal credits in every currency.
type TrialBalance struct {
	At     recon.Date `json:"at,omitempty"`
	Rows   []Row      `json:"rows"`
	Totals []Total    `json:"totals"`
}

// Row is one account in one currency.
type Row struct {
	Account    string          `json:"account"`
	CompteNum  string          `json:"compte_num"`
	CompteLib  string          `json:"compte_lib"`
	CompAuxNum string          `json:"compte_aux,omitempty"`
	Currency   string          `json:"currency"`
	Debit      decimal.Decimal `json:"debit"`
	Credit     decimal.Decimal `json:"credit"`
	Balance    decimal.Decimal `json:"balance"`
}

// Total of one currency.
type Total struct {
	Currency string          `json:"currency"`
	Debit    decimal.Decimal `json:"debit"`
	Credit   decimal.Decimal `json:"credit"`
}

// Trial is the trial balance at the end of day at (empty: everything).
func Trial(entries []recon.Entry, at recon.Date) (TrialBalance, error) {
	lines, err := Lines(entries, Period{To: at})
	if err != nil {
		return TrialBalance{}, err
	}
	tb := TrialBalance{At: at}
	rows := map[[2]string]*Row{}
	totals := map[string]*Total{}
	for _, l := range lines {
		k := [2]string{l.Account, l.Currency}
		r := rows[k]
		if r == nil {
			r = &Row{Account: l.Account, CompteNum: l.Compte.Num, CompteLib: l.Compte.Lib, CompAuxNum: l.Compte.AuxNum, Currency: l.Currency}
			rows[k] = r
		}
		t := totals[l.Currency]
		if t == nil {
			t = &Total{Currency: l.Currency}
			totals[l.Currency] = t
		}
		r.Debit, r.Credit = r.Debit.Add(l.Debit), r.Credit.Add(l.Credit)
		t.Debit, t.Credit = t.Debit.Add(l.Debit), t.Credit.Add(l.Credit)
	}
	for _, r := range rows {
		r.Balance = r.Debit.Sub(r.Credit)
		tb.Rows = append(tb.Rows, *r)
	}
	sort.Slice(tb.Rows, func(i, j int) bool {
		a, b := tb.Rows[i], tb.Rows[j]
		if a.CompteNum != b.CompteNum {
			return a.CompteNum < b.CompteNum
		}
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		return a.Currency < b.Currency
	})
	for _, t := range totals {
		if !t.Debit.Equal(t.Credit) {
			// Every entry balanced, so the sums must: a bug if not.
			panic(fmt.Sprintf("export: %s debits %s and credits %s do not tie", t.Currency, t.Debit, t.Credit))
		}
		tb.Totals = append(tb.Totals, *t)
	}
	sort.Slice(tb.Totals, func(i, j int) bool { return tb.Totals[i].Currency < tb.Totals[j].Currency })
	return tb, nil
}

// WriteCSV writes the trial balance as CSV, a TOTAL row per currency last.
func (tb TrialBalance) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"compte_num", "compte_lib", "compte_aux", "account", "currency", "debit", "credit", "balance"})
	for _, r := range tb.Rows {
		cw.Write([]string{r.CompteNum, r.CompteLib, r.CompAuxNum, r.Account, r.Currency, plain(r.Debit), plain(r.Credit), plain(r.Balance)})
	}
	for _, t := range tb.Totals {
		cw.Write([]string{"TOTAL", "", "", "", t.Currency, plain(t.Debit), plain(t.Credit), plain(t.Debit.Sub(t.Credit))})
	}
	cw.Flush()
	return cw.Error()
}
