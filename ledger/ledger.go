// Package ledger is the double-entry domain: account names (built and
// parsed here), the invariants every entry keeps, and the hash chain over
// each journal partition and its verifier. The journal itself is the
// ledger-entries topic; what readers fold from it is package projection.
// No I/O.
package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"

	"github.com/reconhq/recon"
)

// Account names. A name is "<kind>" or "<kind>:<id>[:<part>]"; none carries
// personal data.
const (
	Suspense = "suspense"
	// Transit carries money moving between journal partitions (a suspense
	// item released to a loan): the releasing side credits it, the loan's
	// side debits it, so it nets to zero once both are booked.
	Transit  = "transit:rematch"
	BankFees = "expense:bank-fees"
	// OwnAccount carries transfers between the lender's own accounts:
	// the outgoing side debits it, the incoming side credits it.
	OwnAccount = "transit:own-accounts"
	// Memo is off balance: review items that move no money (an identity
	// conflict) post the same amount to both of its sides, so their entries
	// balance and net to zero while the journal records them.
	Memo = "memo:conflicts"
)

// Bank is the lender's bank account (its IBAN is the lender's, not a
// borrower's).
func Bank(iban string) string { return "bank:" + strings.ToUpper(iban) }

// Loan receivable parts and the borrower's credit (overpayments).
func Principal(loanID string) string { return "loan:" + loanID + ":principal" }
func Interest(loanID string) string  { return "loan:" + loanID + ":interest" }
func Fees(loanID string) string      { return "loan:" + loanID + ":fees" }
func Credit(loanID string) string    { return "loan:" + loanID + ":credit" }

// BorrowerCredit is what a borrower paid beyond what all their loans owe
// (a payment to the borrower's virtual IBAN).
func BorrowerCredit(borrowerID string) string { return "borrower:" + borrowerID + ":credit" }

// Kinds of account, the part of a name before its first colon.
const (
	KindBank     = "bank"
	KindLoan     = "loan"
	KindBorrower = "borrower"
	KindSuspense = "suspense"
	KindTransit  = "transit"
	KindExpense  = "expense"
	KindMemo     = "memo"
)

// Parts of a loan's receivable, and the credit of a loan or a borrower.
const (
	PartPrincipal = "principal"
	PartInterest  = "interest"
	PartFees      = "fees"
	PartCredit    = "credit"
)

// Account is an account name taken apart.
type Account struct {
	Kind string
	// ID is the bank account's IBAN, the loan's or the borrower's id, or
	// what follows the kind in other names ("rematch" of transit:rematch).
	ID string
	// Part is a loan account's part (PartPrincipal...) or a borrower's
	// PartCredit; "" for other kinds.
	Part string
}

// ParseAccount takes apart a name this package builds; ok is false for
// any other. A loan or borrower id may contain ':': the part follows the
// last one.
func ParseAccount(name string) (a Account, ok bool) {
	kind, rest, _ := strings.Cut(name, ":")
	a = Account{Kind: kind, ID: rest}
	switch kind {
	case KindBank:
		return a, rest != ""
	case KindLoan, KindBorrower:
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			return a, false
		}
		a.ID, a.Part = rest[:i], rest[i+1:]
		switch a.Part {
		case PartPrincipal, PartInterest, PartFees:
			return a, kind == KindLoan
		}
		return a, a.Part == PartCredit
	}
	return a, name == Suspense || name == Transit || name == OwnAccount || name == BankFees || name == Memo
}

// MustBalance panics when e does not balance: an unbalanced entry is a bug in
// recon, never an operating error.
func MustBalance(e recon.Entry) {
	if len(e.Postings) == 0 {
		panic(fmt.Sprintf("ledger: entry %s has no postings", e.ID))
	}
	if balancedFast(e) {
		return
	}
	if err := e.Balanced(); err != nil {
		panic("ledger: " + err.Error())
	}
}

// Seal links e after prev in its partition's chain: it sets Sequence,
// PrevHash and Hash. Hash covers every field but Hash itself, through the
// canonical encoding (canonical.go) the Verifier recomputes.
func Seal(prev Head, e *recon.Entry) Head {
	MustBalance(*e)
	e.Sequence = prev.Sequence + 1
	e.PrevHash = prev.Hash
	e.Hash = digest(*e)
	return Head{Sequence: e.Sequence, Hash: e.Hash}
}

// Head is the end of a partition's chain.
type Head struct {
	Sequence int64
	Hash     string
}

// Genesis is the hash before the first entry of a partition.
const Genesis = ""

// digest is the hash of e without its Hash: the canonical encoding's
// SHA-256 ("c1:" + hex). Entries sealed before the canonical encoding
// existed carry a bare hex hash of their JSON; digestLike checks them the
// way they were sealed.
func digest(e recon.Entry) string {
	var buf [1024]byte
	sum := sha256.Sum256(appendCanonical(buf[:0], &e))
	var out [len(canonicalPrefix) + 2*sha256.Size]byte
	copy(out[:], canonicalPrefix)
	hex.Encode(out[len(canonicalPrefix):], sum[:])
	return string(out[:])
}

const canonicalPrefix = "c1:"

// digestLike recomputes e's hash with the encoding its hash was made with.
func digestLike(e recon.Entry) string {
	if strings.HasPrefix(e.Hash, canonicalPrefix) {
		return digest(e)
	}
	e.Hash = ""
	b, err := json.Marshal(e)
	if err != nil {
		panic("ledger: marshal entry: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// BrokenLink says where a chain stops holding.
type BrokenLink struct {
	Partition int32
	Offset    int64
	EntryID   string
	Sequence  int64
	Reason    string
}

func (b *BrokenLink) Error() string {
	return fmt.Sprintf("journal partition %d offset %d (entry %s, sequence %d): %s", b.Partition, b.Offset, b.EntryID, b.Sequence, b.Reason)
}

// Verifier checks one partition's chain entry by entry, in offset order.
type Verifier struct {
	Partition int32
	head      Head
	Entries   int64
}

// Next checks e, read at offset, against the chain so far.
func (v *Verifier) Next(offset int64, e recon.Entry) error {
	broken := func(reason string) error {
		return &BrokenLink{Partition: v.Partition, Offset: offset, EntryID: e.ID, Sequence: e.Sequence, Reason: reason}
	}
	if err := e.Balanced(); err != nil {
		return broken(err.Error())
	}
	if e.Sequence != v.head.Sequence+1 {
		return broken(fmt.Sprintf("sequence %d follows %d", e.Sequence, v.head.Sequence))
	}
	if e.PrevHash != v.head.Hash {
		return broken("prev_hash does not match the previous entry's hash")
	}
	if got := digestLike(e); got != e.Hash {
		return broken("hash does not match the entry's content (altered)")
	}
	v.head = Head{Sequence: e.Sequence, Hash: e.Hash}
	v.Entries++
	return nil
}

// balancedFast checks the common entry — one currency, positive amounts of
// at most 18 digits — in integers without allocating. It reports false
// when it cannot decide; Balanced then does.
func balancedFast(e recon.Entry) bool {
	cur := e.Postings[0].Currency
	minExp := int32(0)
	for _, p := range e.Postings {
		if p.Currency != cur || p.Amount.Sign() <= 0 || p.Amount.NumDigits() > 18 {
			return false
		}
		minExp = min(minExp, p.Amount.Exponent())
	}
	var sum int64
	for _, p := range e.Postings {
		shift := p.Amount.Exponent() - minExp
		if shift > 18 {
			return false
		}
		hi, v := bits.Mul64(uint64(p.Amount.CoefficientInt64()), uint64(pow10[shift]))
		if hi != 0 || v > 1<<62 {
			return false
		}
		switch p.Side {
		case recon.DebitSide:
			sum += int64(v)
		case recon.CreditSide:
			sum -= int64(v)
		default:
			return false
		}
		if sum > 1<<62 || sum < -(1<<62) {
			return false
		}
	}
	return sum == 0
}
