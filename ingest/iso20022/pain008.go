package iso20022

import (
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Payment initiations — pain.008 direct-debit collections and pain.001
// credit transfers, the messages recon writes for the bank — are read back
// as recon.Expected records (status "expected", no loan id: the file does
// not carry one), one per DrctDbtTxInf / CdtTrfTxInf, so a file built by
// `recon collect` or `recon disburse` can be checked with `recon inspect`.
// NbOfTxs and CtrlSum are checked at group and payment-information level:
// a file whose counts or control sums do not add up is rejected.

// initHeader is what a PmtInf says for all its transactions.
type initHeader struct {
	pmtInfID, seqTp, scheme, account string
	requested                        recon.Date
	nb                               int
	hasNb                            bool
	ctrl                             *decimal.Decimal
}

// initiation reads a CstmrDrctDbtInitn or CstmrCdtTrfInitn.
func (r *reader) initiation(start string, kind recon.ExpectedKind) error {
	var (
		nb, count   int
		hasNb       bool
		ctrl        *decimal.Decimal
		sum         decimal.Decimal
		grpHdrStart int64
	)
	err := r.children(start, func(se string) error {
		switch se {
		case "GrpHdr":
			grpHdrStart = r.sc.offset()
			root, err := r.subtree(se)
			if err != nil {
				return err
			}
			r.msgID = r.t.str(root, "MsgId")
			r.sum.MessageID = r.msgID
			nb, hasNb, ctrl, err = r.counts(root)
			return err
		case "PmtInf":
			n, s, err := r.paymentInstruction(se, kind)
			count, sum = count+n, sum.Add(s)
			return err
		}
		return r.skip(se)
	})
	if err != nil {
		return err
	}
	where := r.sub(start) + "/GrpHdr"
	if hasNb && nb != count {
		return &Error{File: r.file, Path: where + "/NbOfTxs", Offset: grpHdrStart, Reason: fmt.Sprintf("NbOfTxs %d, but the file has %d transactions", nb, count)}
	}
	if ctrl != nil && !ctrl.Equal(sum) {
		return &Error{File: r.file, Path: where + "/CtrlSum", Offset: grpHdrStart, Reason: fmt.Sprintf("CtrlSum %s, but the transactions sum to %s", ctrl, sum)}
	}
	return nil
}

// counts reads NbOfTxs and CtrlSum below n.
func (r *reader) counts(n int32) (int, bool, *decimal.Decimal, error) {
	t := &r.t
	var nb int
	has := false
	if s := t.str(n, "NbOfTxs"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, false, nil, r.failAt(t.child(n, "NbOfTxs"), "NbOfTxs "+strconv.Quote(s)+" is not a count")
		}
		nb, has = v, true
	}
	if s := t.str(n, "CtrlSum"); s != "" {
		d, err := parseAmount(s, r.lim.MaxAmountDigits)
		if err != nil {
			return 0, false, nil, r.failAt(t.child(n, "CtrlSum"), "CtrlSum: "+err.Error())
		}
		return nb, has, &d, nil
	}
	return nb, has, nil, nil
}

// paymentInstruction reads one PmtInf: its header elements (which the
// schemas put before the transactions), then one transaction at a time.
func (r *reader) paymentInstruction(start string, kind recon.ExpectedKind) (int, decimal.Decimal, error) {
	var h initHeader
	count, sum := 0, decimal.Zero
	at := r.sc.offset()
	txName := "DrctDbtTxInf"
	if kind == recon.Disbursement {
		txName = "CdtTrfTxInf"
	}
	err := r.children(start, func(se string) error {
		root, err := r.subtree(se)
		if err != nil {
			return err
		}
		t := &r.t
		switch se {
		case txName:
			count++
			amt, err := r.instruction(root, kind, h)
			sum = sum.Add(amt)
			return err
		case "PmtInfId":
			h.pmtInfID = t.str(root, "")
		case "NbOfTxs", "CtrlSum":
			s := t.str(root, "")
			if se == "NbOfTxs" {
				v, err := strconv.Atoi(s)
				if err != nil || v < 0 {
					return r.failAt(root, "NbOfTxs "+strconv.Quote(s)+" is not a count")
				}
				h.nb, h.hasNb = v, true
				return nil
			}
			d, err := parseAmount(s, r.lim.MaxAmountDigits)
			if err != nil {
				return r.failAt(root, "CtrlSum: "+err.Error())
			}
			h.ctrl = &d
		case "PmtTpInf":
			h.seqTp = t.str(root, "SeqTp")
			h.scheme = t.str(root, "LclInstrm/Cd")
			if h.scheme == "" {
				h.scheme = t.str(root, "LclInstrm/Prtry")
			}
			if h.scheme == "" && kind == recon.Disbursement && t.str(root, "SvcLvl/Cd") == "SEPA" {
				h.scheme = "SCT"
			}
		case "ReqdColltnDt":
			h.requested, err = r.dateText(root, "")
			return err
		case "ReqdExctnDt":
			// pain.001.001.08+: a Dt/DtTm choice; earlier versions: a date.
			if s := t.str(root, ""); s != "" {
				h.requested, err = r.dateText(root, "")
				return err
			}
			h.requested, err = r.date(root)
			return err
		case "CdtrAcct", "DbtrAcct":
			if (se == "CdtrAcct") == (kind == recon.Collection) {
				h.account = normIBAN(t.str(root, "Id/IBAN"))
			}
		}
		return nil
	})
	if err != nil {
		return count, sum, err
	}
	where := r.sub(start)
	if h.hasNb && h.nb != count {
		return count, sum, &Error{File: r.file, Path: where + "/NbOfTxs", Offset: at, Reason: fmt.Sprintf("NbOfTxs %d, but payment information %q has %d transactions", h.nb, h.pmtInfID, count)}
	}
	if h.ctrl != nil && !h.ctrl.Equal(sum) {
		return count, sum, &Error{File: r.file, Path: where + "/CtrlSum", Offset: at, Reason: fmt.Sprintf("CtrlSum %s, but the transactions of payment information %q sum to %s", h.ctrl, h.pmtInfID, sum)}
	}
	return count, sum, nil
}

// instruction turns one DrctDbtTxInf or CdtTrfTxInf into a recon.Expected.
func (r *reader) instruction(n int32, kind recon.ExpectedKind, h initHeader) (decimal.Decimal, error) {
	t := &r.t
	amtAt := n
	if kind == recon.Disbursement {
		amtAt = t.child(n, "Amt")
		if amtAt == none {
			return decimal.Zero, r.failAt(n, "CdtTrfTxInf without Amt")
		}
	}
	amt, ccy, ok, err := r.amount(amtAt, "InstdAmt")
	if err != nil {
		return decimal.Zero, err
	}
	if !ok {
		return decimal.Zero, r.failAt(n, "transaction without InstdAmt")
	}
	e2e := t.str(n, "PmtId/EndToEndId")
	if e2e == "" {
		return decimal.Zero, r.failAt(n, "transaction without PmtId/EndToEndId")
	}
	signed, err := r.dateText(t.at(n, "DrctDbtTx/MndtRltdInf"), "DtOfSgntr")
	if err != nil {
		return decimal.Zero, err
	}
	e := recon.Expected{
		Type: recon.TypeExpected, ID: e2e, Kind: kind, Amount: amt, Currency: ccy,
		MandateID: t.str(n, "DrctDbtTx/MndtRltdInf/MndtId"), MandateSigned: signed,
		SequenceType: h.seqTp, Scheme: h.scheme, RequestedDate: h.requested, MessageID: r.msgID,
		PaymentInfoID: h.pmtInfID, AccountIBAN: h.account, Status: recon.ExpectedOpen,
	}
	r.sum.Expected++
	return amt, r.send(e)
}
