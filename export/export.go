// Package export turns the journal into what accountants file and read: the
// French FEC (Fichier des Écritures Comptables, article A.47 A-1 of the Livre
// des procédures fiscales: 18 tab-separated columns, one line per posting),
// a general-ledger CSV, and a trial balance. Lines, WriteFEC, WriteGL and
// Trial are pure functions of []recon.Entry; Load reads the journal from
// Kafka and Handler serves the three over HTTP.
//
// recon's accounts map to the French chart of accounts (Plan comptable
// général) as follows; loan accounts carry the loan id as auxiliary account
// (CompAuxNum), bank accounts the IBAN:
//
//	bank:<IBAN>              512000 Banques                          aux = IBAN
//	loan:<id>:principal      274800 Autres prêts                     aux = loan id
//	loan:<id>:interest       762400 Revenus des prêts                aux = loan id
//	loan:<id>:fees           708800 Autres produits d'activités annexes (frais de dossier) aux = loan id
//	loan:<id>:credit         419000 Clients créditeurs (trop-perçus) aux = loan id
//	suspense                 471000 Compte d'attente
//	transit:rematch          581000 Virements internes – réaffectations
//	transit:own-accounts     580000 Virements internes
//	expense:bank-fees        627000 Services bancaires et assimilés
//	anything else            471900 Compte d'attente – à classer     aux = recon account
//
// recon books cash: a repayment credits the loan's receivable parts without
// an earlier accrual entry, so interest and fees go straight to income
// (classes 7) and principal reduces the loan (274). Entries touching a bank
// account are in journal BQ (Banque), the others in OD (Opérations
// diverses); EcritureNum numbers each journal's entries from 1 in date
// order within the exported period (export the fiscal year for a filing).
// EcritureDate is the entry's effective date (the bank's booking date),
// else the day recon booked it; ValidDate is the day recon booked it.
// Amounts are written with a comma and exactly two decimals; the FEC is in
// euros, so a posting in another currency, or with more than two decimals,
// is an error (never rounded, never dropped).
package export

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/projection"
)

// Period is a range of accounting dates, both ends included; an empty end
// is open.
type Period struct {
	From, To recon.Date
}

// Validate checks the dates.
func (p Period) Validate() error {
	for _, d := range []recon.Date{p.From, p.To} {
		if d != "" && !d.Valid() {
			return fmt.Errorf("export: %q is not a date (YYYY-MM-DD)", d)
		}
	}
	if p.From != "" && p.To != "" && p.To < p.From {
		return fmt.Errorf("export: period ends (%s) before it starts (%s)", p.To, p.From)
	}
	return nil
}

func (p Period) contains(d recon.Date) bool {
	return (p.From == "" || d >= p.From) && (p.To == "" || d <= p.To)
}

// Line is one posting in accounting terms: one FEC line, one GL row.
type Line struct {
	JournalCode, JournalLib string
	EcritureNum             string
	Date                    recon.Date
	Compte                  Compte
	PieceRef                string
	PieceDate               recon.Date
	Label                   string
	Debit, Credit           decimal.Decimal
	Currency                string
	ValidDate               recon.Date
	// The recon side.
	Account, EntryID, Kind, LoanID string
}

// Compte is a recon account in the French chart of accounts.
type Compte struct {
	Num, Lib, AuxNum, AuxLib string
}

// Map gives the French account of a recon account (see the package doc).
func Map(account string) Compte {
	a, ok := ledger.ParseAccount(account)
	switch {
	case !ok:
	case a.Kind == ledger.KindBank:
		return Compte{Num: "512000", Lib: "Banques", AuxNum: a.ID, AuxLib: "Banque " + a.ID}
	case a.Kind == ledger.KindLoan:
		aux := func(c Compte) Compte { c.AuxNum, c.AuxLib = a.ID, "Prêt "+a.ID; return c }
		switch a.Part {
		case ledger.PartPrincipal:
			return aux(Compte{Num: "274800", Lib: "Autres prêts"})
		case ledger.PartInterest:
			return aux(Compte{Num: "762400", Lib: "Revenus des prêts"})
		case ledger.PartFees:
			return aux(Compte{Num: "708800", Lib: "Autres produits d'activités annexes"})
		case ledger.PartCredit:
			return aux(Compte{Num: "419000", Lib: "Clients créditeurs"})
		}
	case account == ledger.Suspense:
		return Compte{Num: "471000", Lib: "Compte d'attente"}
	case account == ledger.Transit:
		return Compte{Num: "581000", Lib: "Virements internes - réaffectations"}
	case account == ledger.OwnAccount:
		return Compte{Num: "580000", Lib: "Virements internes"}
	case account == ledger.BankFees:
		return Compte{Num: "627000", Lib: "Services bancaires et assimilés"}
	}
	return Compte{Num: "471900", Lib: "Compte d'attente - à classer", AuxNum: account, AuxLib: account}
}

// DateOf is an entry's accounting date (projection.DateOf).
func DateOf(e recon.Entry) recon.Date { return projection.DateOf(e) }

// Lines turns the entries of p into lines, one per posting, in date order
// (then booking time, then entry id), numbered per journal. An entry seen
// twice (same id) counts once; an entry that does not balance is an error.
func Lines(entries []recon.Entry, p Period) ([]Line, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var in []recon.Entry
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.ID] || !p.contains(DateOf(e)) {
			continue
		}
		seen[e.ID] = true
		if len(e.Postings) == 0 {
			return nil, fmt.Errorf("export: entry %s has no postings", e.ID)
		}
		if err := e.Balanced(); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		in = append(in, e)
	}
	sort.SliceStable(in, func(i, j int) bool {
		di, dj := DateOf(in[i]), DateOf(in[j])
		if di != dj {
			return di < dj
		}
		if !in[i].BookedAt.Equal(in[j].BookedAt) {
			return in[i].BookedAt.Before(in[j].BookedAt)
		}
		return in[i].ID < in[j].ID
	})
	next := map[string]int{}
	var out []Line
	for _, e := range in {
		code, lib := "OD", "Opérations diverses"
		for _, p := range e.Postings {
			if strings.HasPrefix(p.Account, "bank:") {
				code, lib = "BQ", "Banque"
			}
		}
		next[code]++
		num := fmt.Sprintf("%s%06d", code, next[code])
		d := DateOf(e)
		for _, p := range e.Postings {
			l := Line{JournalCode: code, JournalLib: lib, EcritureNum: num, Date: d, Compte: Map(p.Account),
				PieceRef: e.ID, PieceDate: d, Label: label(e), Currency: p.Currency,
				ValidDate: recon.Date(e.BookedAt.UTC().Format(time.DateOnly)), Account: p.Account,
				EntryID: e.ID, Kind: e.Kind, LoanID: e.LoanID}
			if e.BookedAt.IsZero() {
				l.ValidDate = d
			}
			if p.Side == recon.DebitSide {
				l.Debit = p.Amount
			} else {
				l.Credit = p.Amount
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// label is the entry's description, on one line.
func label(e recon.Entry) string {
	s := e.Kind
	if e.LoanID != "" {
		s += " loan " + e.LoanID
	}
	if e.Note != "" {
		s += " - " + e.Note
	}
	return clean(s)
}

// clean keeps a field on one line and out of the column separators.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r', '|':
			return ' '
		}
		return r
	}, s)
}
