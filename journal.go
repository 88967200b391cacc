package recon

// Entry kinds, the value of Entry.Kind: what a journal entry records. The
// matcher writes them; every reader of the journal (package projection)
// decides on them, so they are part of the vocabulary and their strings
// never change.
const (
	// EntryRepayment allocates money paid to a loan (bank → its parts).
	EntryRepayment = "repayment"
	// EntryRematchIn books on a loan a share released from suspense
	// (transit → its parts).
	EntryRematchIn = "rematch"
	// EntryRelease takes an item out of suspense to transit.
	EntryRelease = "suspense-release"
	// EntrySuspense parks money in suspense: it opens a suspense item.
	EntrySuspense = "suspense"
	// EntryReversal undoes a repayment that was returned.
	EntryReversal      = "reversal"
	EntryCreditApplied = "credit-applied"
	EntryRefund        = "refund"
	EntryBankFees      = "bank-fees"
	// EntryOwnAccount is a transfer between the lender's own accounts.
	EntryOwnAccount = "own-account"
	// EntryDisbursement pays a loan out: principal receivable against the
	// bank account. It is lent money, not a payment.
	EntryDisbursement = "disbursement"
	// EntryDebitReversal is an incoming reversal of an earlier outgoing
	// transfer (a disbursement or refund that came back).
	EntryDebitReversal = "debit-reversal"
	// EntryTakeBack books an assigned outgoing suspense item (a return
	// parked for an amount mismatch) or an unassignment against a loan:
	// borrower credit first, then principal, interest and fees (the
	// waterfall backwards).
	EntryTakeBack = "take-back"
	// EntryUnassign takes an assignment back from a loan to transit.
	EntryUnassign = "unassign"
	// EntryRepark puts money taken back from a loan into suspense again
	// (it joins the item when one is open).
	EntryRepark = "repark"
	// EntryReview parks a review item that moves no money (an identity
	// conflict): its postings are a debit and a credit of the same amount
	// on the off-balance account memo:conflicts, so the entry balances,
	// nets to zero, and the journal stays the only state.
	EntryReview = "review"
	// EntryReviewClosed closes a review item (same memo postings).
	EntryReviewClosed = "review-closed"
)

// Lent reports whether an entry of this kind moves principal without being
// a payment (money lent, or lent money that came back): what a loan was
// paid leaves it out.
func Lent(kind string) bool { return kind == EntryDisbursement || kind == EntryDebitReversal }
