package recon

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/shopspring/decimal"
)

// Suspense item kinds.
const (
	// ItemMoney is money parked in suspense; its amount is what is parked.
	ItemMoney = "money"
	// ItemConflict is a review item: a sighting of a known identity with
	// another amount. Nothing was booked for it.
	ItemConflict = "conflict"
)

// ConflictID names the review item of a conflicting sighting: the same
// sighting seen again names the same item.
func ConflictID(t BankTransaction) string {
	sum := sha256.Sum256([]byte(t.ID + "\x00" + t.Amount.String() + "\x00" + t.Currency + "\x00" + string(t.Direction)))
	return "cf_" + hex.EncodeToString(sum[:10])
}

// Suspense commands, what a person asks of a suspense item. A split is an
// assignment with several allocations.
const (
	SuspenseAssign   = "assign"   // book an item on one or more loans
	SuspenseDismiss  = "dismiss"  // close a review item once checked
	SuspenseUnassign = "unassign" // take an assignment back to suspense
)

// Rules that name a person's decision in a match decision.
const (
	RuleManual         = "manual"          // a person assigned or dismissed
	RuleManualUnassign = "manual-unassign" // a person took an assignment back
)

// Allocation is one share of a suspense item assigned to a loan.
type Allocation struct {
	LoanID string          `json:"loan_id"`
	Amount decimal.Decimal `json:"amount"`
}

// SuspenseCommand is a person's decision on a suspense item, as the API
// publishes it. Its JSON is the matcher's routed record for the same kind
// (the fields the matcher reads), so the matcher's partition that holds
// the item books it.
type SuspenseCommand struct {
	Kind string `json:"kind"` // SuspenseAssign, SuspenseDismiss or SuspenseUnassign
	// Key is the record's key: "suspense" for assign and dismiss, the
	// loan's routing key for unassign.
	Key         string          `json:"key"`
	Transaction BankTransaction `json:"transaction"` // only its ID: the item's transaction
	LoanID      string          `json:"loan_id,omitempty"`
	Rule        string          `json:"rule"`
	Note        string          `json:"note,omitempty"`
	Actor       string          `json:"actor,omitempty"`
	Allocations []Allocation    `json:"allocations,omitempty"`
	// ItemID names the item when it is not the transaction id (review
	// items).
	ItemID string `json:"item_id,omitempty"`
}
