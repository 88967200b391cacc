package collect

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// DisburseOptions of a disbursement batch.
type DisburseOptions struct {
	// Debtor is the lender's account the money leaves from.
	Debtor Account
	// Instant asks for SEPA Instant (SCT Inst). Since 9 October 2025 every
	// euro-area PSP that offers SEPA credit transfers must also receive
	// instant ones (Regulation (EU) 2024/886), so it is the default in the
	// command; turn it off for a borrower's bank outside that rule.
	Instant bool
	// Amounts overrides the amount per loan id (e.g. the principal net of
	// fees withheld); the default is the loan's principal.
	Amounts map[string]decimal.Decimal
	// RequestedDate of execution; default Today.
	RequestedDate recon.Date
	Today         recon.Date
	Now           time.Time
	// WindowDays without settlement make the item overdue. Default 1 for
	// instant transfers, 3 otherwise.
	WindowDays int
	MaxItems   int // default 100000
}

func (o *DisburseOptions) validate() error {
	switch {
	case o.Debtor.Name == "" || o.Debtor.IBAN == "":
		return errors.New("disburse: the lender's account name and IBAN are required")
	case recon.ValidIBAN(o.Debtor.IBAN) != nil:
		return fmt.Errorf("disburse: the lender's IBAN is not an IBAN: %w", recon.ValidIBAN(o.Debtor.IBAN))
	case !o.Today.Valid():
		return fmt.Errorf("disburse: today %q is not a date", o.Today)
	case o.RequestedDate != "" && !o.RequestedDate.Valid():
		return fmt.Errorf("disburse: requested date %q is not a date", o.RequestedDate)
	}
	if o.RequestedDate == "" || o.RequestedDate < o.Today {
		o.RequestedDate = o.Today
	}
	if o.WindowDays <= 0 {
		o.WindowDays = 3
		if o.Instant {
			o.WindowDays = 1
		}
	}
	if o.MaxItems <= 0 {
		o.MaxItems = defaultMaxItems
	}
	return nil
}

// Disbursements builds the pain.001 transferring each loan to its borrower,
// skipping loans that known already shows disbursed (or in flight). One
// transfer per loan. Its end-to-end id is the loan's
// DisbursementEndToEndID (how the matcher recognises the outgoing transfer)
// when set, else "D-<loan id>"; after a reject a new attempt gets a new id
// ("D-<loan id>-2"), which the loan must then carry for the matcher.
func Disbursements(loans []recon.Loan, known []recon.Expected, o DisburseOptions) (Batch, error) {
	if err := o.validate(); err != nil {
		return Batch{}, err
	}
	h := newHistory(known)
	sorted := append([]recon.Loan(nil), loans...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].LoanID < sorted[j].LoanID })
	scheme := "SCT"
	if o.Instant {
		scheme = "INST"
	}
	var b Batch
	for _, l := range sorted {
		if h.paid[l.LoanID] {
			b.Skipped = append(b.Skipped, Skip{LoanID: l.LoanID, Reason: "already disbursed or in flight"})
			continue
		}
		amt := l.Principal
		if a, ok := o.Amounts[l.LoanID]; ok {
			amt = a
		}
		why := sepaAmount(amt)
		switch {
		case l.Currency != "EUR":
			why = "currency " + l.Currency + ": SEPA transfers are in EUR only"
		case l.Borrower == nil || l.Borrower.IBAN == "":
			why = "no borrower IBAN to pay"
		case recon.ValidIBAN(l.Borrower.IBAN) != nil:
			why = "the borrower IBAN to pay is not an IBAN: " + recon.ValidIBAN(l.Borrower.IBAN).Error()
		}
		if why != "" {
			b.Skipped = append(b.Skipped, Skip{LoanID: l.LoanID, Reason: why})
			continue
		}
		if len(b.Items) == o.MaxItems {
			return Batch{}, fmt.Errorf("disburse: more than MaxItems (%d) transfers in one batch", o.MaxItems)
		}
		id := endToEndID("D-", l.LoanID, "", h.tried[l.LoanID]+1)
		if l.DisbursementEndToEndID != "" && h.tried[l.LoanID] == 0 {
			id = l.DisbursementEndToEndID
		}
		b.Items = append(b.Items, recon.Expected{
			Type: recon.TypeExpected, ID: id, Kind: recon.Disbursement,
			LoanID: l.LoanID, Amount: amt, Currency: "EUR", Scheme: scheme, RequestedDate: o.RequestedDate,
			WindowDays: o.WindowDays, AccountIBAN: normIBAN(o.Debtor.IBAN), Status: recon.ExpectedOpen, StatusOn: o.Today,
		})
	}
	if len(b.Items) == 0 {
		return b, nil
	}
	b.MessageID = messageID("disburse|"+normIBAN(o.Debtor.IBAN)+"|"+scheme, b.Items)
	pmtInf := paymentInfoID(b.MessageID, scheme, o.RequestedDate)
	byLoan := map[string]recon.Loan{}
	for _, l := range loans {
		byLoan[l.LoanID] = l
	}
	p := ctPmtInf{PmtInfID: pmtInf, PmtMtd: "TRF", NbOfTxs: len(b.Items), CtrlSum: total(b.Items).StringFixed(2),
		SvcLvl: "SEPA", ReqdExctnDt: string(o.RequestedDate), Dbtr: party{Nm: sepaText(o.Debtor.Name, 70)},
		DbtrAcct: account{IBAN: normIBAN(o.Debtor.IBAN)}, DbtrAgt: newAgent(o.Debtor.BIC), ChrgBr: "SLEV"}
	if o.Instant {
		p.LclInstrm = "INST"
	}
	for i := range b.Items {
		it := &b.Items[i]
		it.MessageID, it.PaymentInfoID = b.MessageID, pmtInf
		l := byLoan[it.LoanID]
		p.Tx = append(p.Tx, ctTxInf{EndToEndID: it.ID, InstdAmt: newAmount("EUR", it.Amount), Cdtr: party{Nm: borrowerName(l)},
			CdtrAcct: account{IBAN: normIBAN(l.Borrower.IBAN)}, Ustrd: sepaText("Loan "+l.LoanID+" disbursement", 140)})
	}
	doc := pain001Doc{Xmlns: nsPain001, PmtInf: []ctPmtInf{p}, GrpHdr: groupHeader{MsgID: b.MessageID,
		CreDtTm: o.Now.UTC().Format("2006-01-02T15:04:05"), NbOfTxs: len(b.Items), CtrlSum: p.CtrlSum,
		InitgPty: party{Nm: sepaText(o.Debtor.Name, 70)}}}
	var err error
	b.XML, err = marshal(doc)
	return b, err
}
