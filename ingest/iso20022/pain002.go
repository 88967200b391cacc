package iso20022

import (
	"github.com/reconhq/recon"
)

// statusReport reads a pain.002 (CstmrPmtStsRpt) or pacs.002
// (FIToFIPmtStsRpt): one StatusReport per group, payment-info and
// transaction status present. pacs.002 has TxInfAndSts under the message,
// pain.002 under OrgnlPmtInfAndSts; both are read wherever they are.
func (r *reader) statusReport(start string) error {
	var group string // the original message id of the last OrgnlGrpInfAndSts
	return r.children(start, func(se string) error {
		switch se {
		case "GrpHdr":
			root, err := r.subtree(se)
			if err != nil {
				return err
			}
			r.msgID = r.t.str(root, "MsgId")
			r.sum.MessageID = r.msgID
			return nil
		case "OrgnlGrpInfAndSts":
			root, err := r.subtree(se)
			if err != nil {
				return err
			}
			t := &r.t
			group = t.str(root, "OrgnlMsgId")
			if sts := t.str(root, "GrpSts"); sts != "" {
				return r.sendStatus(recon.StatusReport{OriginalMessageID: group, Status: sts, Reason: reason(t, root), Level: "group"})
			}
			return nil
		case "OrgnlPmtInfAndSts":
			return r.paymentInfo(se, group)
		case "TxInfAndSts":
			return r.txStatus(se, group, "")
		}
		return r.skip(se)
	})
}

// paymentInfo reads one OrgnlPmtInfAndSts, its own status first, then its
// transactions one at a time.
func (r *reader) paymentInfo(start string, group string) error {
	var id, sts, why string
	sent := false
	flush := func() error {
		if sent || sts == "" {
			return nil
		}
		sent = true
		return r.sendStatus(recon.StatusReport{OriginalMessageID: group, OriginalPaymentInfoID: id, Status: sts, Reason: why, Level: "payment_info"})
	}
	err := r.children(start, func(se string) error {
		switch se {
		case "OrgnlPmtInfId", "PmtInfSts", "StsRsnInf":
			root, err := r.subtree(se)
			if err != nil {
				return err
			}
			t := &r.t
			switch se {
			case "OrgnlPmtInfId":
				id = t.str(root, "")
			case "PmtInfSts":
				sts = t.str(root, "")
			case "StsRsnInf":
				if why == "" {
					why = code(t, t.at(root, "Rsn"))
				}
			}
			return nil
		case "TxInfAndSts":
			if err := flush(); err != nil {
				return err
			}
			return r.txStatus(se, group, id)
		}
		return r.skip(se)
	})
	if err != nil {
		return err
	}
	return flush()
}

func (r *reader) txStatus(start string, group, pmtInf string) error {
	root, err := r.subtree(start)
	if err != nil {
		return err
	}
	t := &r.t
	sts := t.str(root, "TxSts")
	if sts == "" {
		return nil // pain.002.001.03 lets a transaction inherit its group's status
	}
	orig := t.str(root, "OrgnlGrpInf/OrgnlMsgId")
	if orig == "" {
		orig = group
	}
	return r.sendStatus(recon.StatusReport{OriginalMessageID: orig, OriginalPaymentInfoID: pmtInf,
		OriginalEndToEndID: t.str(root, "OrgnlEndToEndId"), Status: sts, Reason: reason(t, root), Level: "transaction"})
}

func (r *reader) sendStatus(s recon.StatusReport) error {
	s.Type, s.Source, s.MessageID = recon.TypeStatus, r.source, r.msgID
	r.sum.StatusReports++
	return r.send(s)
}

// reason is the first StsRsnInf/Rsn code (Cd, else Prtry) under n.
func reason(t *tree, n int32) string {
	return code(t, t.at(n, "StsRsnInf/Rsn"))
}

func code(t *tree, n int32) string {
	if c := t.str(n, "Cd"); c != "" {
		return c
	}
	return t.str(n, "Prtry")
}
