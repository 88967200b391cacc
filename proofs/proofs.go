// Package proofs proves bank statements against the ledger: each camt.053
// closing balance is compared with the ledger's balance of that bank account
// at the statement's date, and each opening balance with the previous
// statement's closing balance. A difference is a recon.Break event that
// alerts and analytics consume (topic recon.reconciliation.v1).
//
// The rule, exactly. For a statement S of account A in currency C, dated D
// (to_date, else the closing balance's date), covering dates F..D (from_date,
// else D), with booked transactions T(S) (the booked transaction records of
// S's message for account A):
//
//   - The ledger knows only what recon posted, so the account's balance
//     before recon is anchored once: the first statement of A seen (in the
//     statements topic's order) that has an opening balance sets the anchor
//     (F, opening): "the balance at the start of day F was opening".
//   - ledger(D) = anchor balance + net movement of ledger account bank:A in
//     C (debits - credits) over entries whose effective date is in
//     [anchor date, D], minus that over dates in (D, anchor date) when D
//     precedes the anchor.
//   - proof: closing(S) must equal ledger(D); difference = closing - ledger.
//     The statement's own movement must also be what the ledger booked for
//     its transactions: closing - opening = sum over T(S) of their net
//     movement on bank:A. Either failing is status "break"; the reason says
//     which.
//   - chain: opening(S) must equal closing of the previous statement of A
//     (the latest dated one before D); otherwise a "chain" break.
//
// Timing: the journal lags the statement. S is evaluated once it is
// complete: at least BookedEntries booked records of its message were read,
// their signed amounts sum to booked credits - booked debits, and every one
// of them has a journal entry on bank:A (every booked sighting ends in one:
// posted, parked in suspense, or booked under its identity by an earlier
// sighting). Statements of one account are evaluated in date order. A
// statement still incomplete Timeout after it was published is reported
// "incomplete" and stays pending: when it completes, its final status
// follows under the same id.
//
// Prove and Chain are pure; Tracker holds the bounded state; Service is the
// Kafka loop.
package proofs

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// Anchor is the balance of a bank account at the start of a day, taken from
// the first statement of the account with an opening balance.
type Anchor struct {
	Date    recon.Date      `json:"date"`
	Balance decimal.Decimal `json:"balance"`
}

// Days is a ledger account's net movement (debits - credits) per effective
// date, in one currency.
type Days map[recon.Date]decimal.Decimal

// BalanceAt is the account's balance at the end of day d, given the anchor.
func (ds Days) BalanceAt(a Anchor, d recon.Date) decimal.Decimal {
	b := a.Balance
	for day, m := range ds {
		switch {
		case day >= a.Date && day <= d:
			b = b.Add(m)
		case day < a.Date && day > d:
			b = b.Sub(m)
		}
	}
	return b
}

// Facts is what the ledger and the bank-transactions topic say about one
// statement when it is evaluated.
type Facts struct {
	// Transactions are the statement's booked transaction records: id ->
	// signed amount (credit positive).
	Transactions map[string]decimal.Decimal
	// Posted is, for those the ledger has booked, their net movement on the
	// bank account (debits - credits).
	Posted map[string]decimal.Decimal
	// Anchor is nil while no statement of the account had an opening
	// balance: the proof is then incomplete.
	Anchor *Anchor
	// Days is the bank account's ledger movement by date.
	Days Days
}

// Provable reports whether st is a statement this package proves: a
// camt.053 with a closing balance, a currency and a date.
func Provable(st recon.Statement) bool {
	return st.Type == recon.TypeStatement && strings.HasPrefix(st.Source, "camt.053") &&
		st.ClosingBalance != nil && st.Currency != "" && st.AccountIBAN != "" && st.Date().Valid()
}

// Account is the ledger account of a statement's bank account.
func Account(st recon.Statement) string { return ledger.Bank(st.AccountIBAN) }

// Complete reports whether every booked transaction of st is known and
// booked in the ledger; missing is how many are not (yet) booked.
func Complete(st recon.Statement, f Facts) (complete bool, missing int) {
	sum := decimal.Zero
	for id, amt := range f.Transactions {
		sum = sum.Add(amt)
		if _, ok := f.Posted[id]; !ok {
			missing++
		}
	}
	read := len(f.Transactions) >= st.BookedEntries && sum.Equal(st.BookedCredits.Sub(st.BookedDebits))
	if !read && missing == 0 {
		missing = max(st.BookedEntries-len(f.Transactions), 1)
	}
	return read && missing == 0, missing
}

// Prove evaluates the proof of st at instant now. final says the statement
// may not wait any longer: an incomplete statement is then reported
// "incomplete"; otherwise Prove reports ok=false and the caller waits.
func Prove(now time.Time, st recon.Statement, f Facts, final bool) (b recon.Break, ok bool) {
	complete, missing := Complete(st, f)
	if !complete && !final {
		return recon.Break{}, false
	}
	d := st.Date()
	closing := *st.ClosingBalance
	if f.Anchor == nil {
		return recon.Break{Type: recon.BreakProof, ID: st.ID + "/" + recon.BreakProof, StatementID: st.ID,
			AccountIBAN: st.AccountIBAN, Date: d, Currency: st.Currency, Expected: closing,
			Transactions: len(f.Transactions), Missing: missing, At: now, Status: recon.BreakIncomplete,
			Reason: "no statement of the account with an opening balance anchors the ledger yet"}, true
	}
	led := f.Days.BalanceAt(*f.Anchor, d)
	b = recon.Break{Type: recon.BreakProof, ID: st.ID + "/" + recon.BreakProof, StatementID: st.ID,
		AccountIBAN: st.AccountIBAN, Date: d, Currency: st.Currency,
		Expected: closing, Ledger: led, Difference: closing.Sub(led),
		Transactions: len(f.Transactions), Missing: missing, At: now, Status: recon.BreakOK}
	var why []string
	if !b.Difference.IsZero() {
		why = append(why, fmt.Sprintf("closing balance %s %s, ledger balance of %s at %s is %s (difference %s)",
			closing, st.Currency, Account(st), d, led, b.Difference))
	}
	if st.OpeningBalance != nil {
		moved := closing.Sub(*st.OpeningBalance)
		posted := decimal.Zero
		for id := range f.Transactions {
			posted = posted.Add(f.Posted[id])
		}
		if !moved.Equal(posted) {
			why = append(why, fmt.Sprintf("statement moves %s, the ledger booked %s for its %d transactions (difference %s)",
				moved, posted, len(f.Transactions), moved.Sub(posted)))
		}
	}
	switch {
	case !complete:
		b.Status = recon.BreakIncomplete
		why = append([]string{fmt.Sprintf("%d of %d booked transactions not in the ledger yet (or not read)", missing, max(len(f.Transactions), st.BookedEntries))}, why...)
	case len(why) > 0:
		b.Status = recon.BreakBroken
	}
	b.Reason = strings.Join(why, "; ")
	return b, true
}

// Mark is what the chain check remembers of an account's latest statement.
type Mark struct {
	StatementID string          `json:"statement_id"`
	Date        recon.Date      `json:"date"`
	Closing     decimal.Decimal `json:"closing"`
}

// Chain checks that st opens where the previous statement (prev, nil for the
// first) closed. It returns nil when there is nothing to report: no previous
// statement, no opening balance, or st not later than prev.
func Chain(now time.Time, prev *Mark, st recon.Statement) *recon.Break {
	d := st.Date()
	if prev == nil || st.OpeningBalance == nil || d <= prev.Date {
		return nil
	}
	open := *st.OpeningBalance
	b := &recon.Break{Type: recon.BreakChain, ID: st.ID + "/" + recon.BreakChain, StatementID: st.ID,
		PreviousStatementID: prev.StatementID, AccountIBAN: st.AccountIBAN, Date: d, Currency: st.Currency,
		Expected: open, Ledger: prev.Closing, Difference: open.Sub(prev.Closing), At: now, Status: recon.BreakOK}
	if !b.Difference.IsZero() {
		b.Status = recon.BreakBroken
		b.Reason = fmt.Sprintf("opening balance %s, previous statement %s (%s) closed at %s", open, prev.StatementID, prev.Date, prev.Closing)
	}
	return b
}
