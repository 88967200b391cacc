package iso20022

import (
	"strconv"

	"github.com/reconhq/recon"
)

// paymentReturn reads a pacs.004 (PmtRtr): one Return per TxInf. A Return's
// ID is its RtrId, else "<message id>#<TxInf index>".
func (r *reader) paymentReturn(start string) error {
	var settled recon.Date // GrpHdr/IntrBkSttlmDt, the default for every TxInf
	n := 0
	return r.children(start, func(se string) error {
		switch se {
		case "GrpHdr":
			root, err := r.subtree(se)
			if err != nil {
				return err
			}
			r.msgID = r.t.str(root, "MsgId")
			r.sum.MessageID = r.msgID
			settled, err = r.dateText(root, "IntrBkSttlmDt")
			return err
		case "TxInf":
			n++
			root, err := r.subtree(se)
			if err != nil {
				return err
			}
			return r.returnRecord(root, n, settled)
		}
		return r.skip(se)
	})
}

func (r *reader) returnRecord(n int32, index int, settled recon.Date) error {
	t := &r.t
	amt, ccy, ok, err := r.amount(n, "RtrdIntrBkSttlmAmt")
	if err != nil {
		return err
	}
	if !ok {
		return r.failAt(n, "TxInf without RtrdIntrBkSttlmAmt")
	}
	d, err := r.dateText(n, "IntrBkSttlmDt")
	if err != nil {
		return err
	}
	if d == "" {
		d = settled
	}
	id := t.str(n, "RtrId")
	if id == "" {
		id = r.msgID + "#" + strconv.Itoa(index)
	}
	ret := recon.Return{
		Type: recon.TypeReturn, ID: id, Source: r.source, MessageID: r.msgID,
		OriginalEndToEndID: t.str(n, "OrgnlEndToEndId"), ReturnedAmount: amt, Currency: ccy,
		ReasonCode: code(t, t.at(n, "RtrRsnInf/Rsn")), SettlementDate: d,
	}
	r.sum.Returns++
	return r.send(ret)
}

// dateText reads a plain ISODate child of n.
func (r *reader) dateText(n int32, name string) (recon.Date, error) {
	s := r.t.str(n, name)
	if s == "" {
		return "", nil
	}
	d := recon.Date(s)
	if !r.validDate(d) {
		return "", r.failAt(r.t.child(n, name), "invalid date "+strconv.Quote(s))
	}
	return d, nil
}
