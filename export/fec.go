package export

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/shopspring/decimal"
)

// FECColumns are the 18 columns of the FEC, in order.
var FECColumns = []string{"JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
	"CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
	"ValidDate", "Montantdevise", "Idevise"}

// WriteFEC writes the header and one tab-separated line per posting.
// EcritureLet and DateLet (lettering) stay empty; Montantdevise and Idevise
// too, since every line is in euros (another currency is an error).
func WriteFEC(w io.Writer, lines []Line) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(strings.Join(FECColumns, "\t") + "\r\n")
	for i, l := range lines {
		if l.Currency != "EUR" {
			return fmt.Errorf("export: FEC line %d (entry %s, %s): currency %s; the FEC is kept in euros: convert first", i+1, l.EntryID, l.Account, l.Currency)
		}
		debit, err := fecAmount(l.Debit)
		if err == nil {
			var credit string
			if credit, err = fecAmount(l.Credit); err == nil {
				f := []string{l.JournalCode, l.JournalLib, l.EcritureNum, ymd(string(l.Date)), l.Compte.Num, l.Compte.Lib,
					l.Compte.AuxNum, l.Compte.AuxLib, l.PieceRef, ymd(string(l.PieceDate)), l.Label, debit, credit, "", "",
					ymd(string(l.ValidDate)), "", ""}
				for j := range f {
					f[j] = clean(f[j])
				}
				bw.WriteString(strings.Join(f, "\t") + "\r\n")
				continue
			}
		}
		return fmt.Errorf("export: FEC line %d (entry %s, %s): %w", i+1, l.EntryID, l.Account, err)
	}
	return bw.Flush()
}

// fecAmount is "1234,50": a comma and exactly two decimals.
func fecAmount(d decimal.Decimal) (string, error) {
	if !d.Equal(d.Truncate(2)) {
		return "", fmt.Errorf("amount %s has more than two decimals", d)
	}
	return strings.Replace(d.StringFixed(2), ".", ",", 1), nil
}

func ymd(d string) string { return strings.ReplaceAll(d, "-", "") }

// GLColumns are the columns of the general-ledger CSV.
var GLColumns = []string{"date", "journal", "entry_num", "entry_id", "kind", "loan_id", "account", "compte_num",
	"compte_aux", "label", "debit", "credit", "currency"}

// WriteGL writes the general-ledger CSV: one row per posting, amounts with
// a dot and at least two decimals (exact: never rounded).
func WriteGL(w io.Writer, lines []Line) error {
	cw := csv.NewWriter(w)
	cw.Write(GLColumns)
	for _, l := range lines {
		cw.Write([]string{string(l.Date), l.JournalCode, l.EcritureNum, l.EntryID, l.Kind, l.LoanID, l.Account,
			l.Compte.Num, l.Compte.AuxNum, l.Label, plain(l.Debit), plain(l.Credit), l.Currency})
	}
	cw.Flush()
	return cw.Error()
}

// plain is the exact amount with at least two decimals.
func plain(d decimal.Decimal) string {
	if d.Equal(d.Truncate(2)) {
		return d.StringFixed(2)
	}
	return d.String()
}
