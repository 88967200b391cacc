package collect

import (
	"encoding/xml"
	"fmt"

	"github.com/shopspring/decimal"
)

// The XML is written from these small structs, not from moov-io/iso20022's
// generated pain_v09/pain_v10 types: those hold amounts as float64, which
// encoding/xml prints with strconv 'g' formatting — 1000000.00 comes out as
// "1e+06" and 1234567.89 as "1.23456789e+06" (not an xsd:decimal; banks and
// recon's own reader refuse them), and 18-digit amounts lose digits
// (TestMoovAmountsAreNotExact measures it). Here an amount is a decimal
// printed with exactly two fraction digits.

const (
	nsPain008 = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.09"
	nsPain001 = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.10"
)

type amount struct {
	Ccy   string `xml:"Ccy,attr"`
	Value string `xml:",chardata"`
}

func newAmount(ccy string, d decimal.Decimal) amount {
	return amount{Ccy: ccy, Value: d.StringFixed(2)}
}

type party struct {
	Nm string `xml:"Nm"`
}

type account struct {
	IBAN string `xml:"Id>IBAN"`
}

// agent is FinInstnId with a BIC, or "NOTPROVIDED" as the EPC guidelines
// ask when the BIC is not known (IBAN-only SEPA).
type agent struct {
	FinInstnID finInstnID `xml:"FinInstnId"`
}

type finInstnID struct {
	BICFI string `xml:"BICFI,omitempty"`
	Othr  *other `xml:"Othr,omitempty"`
}

type other struct {
	ID string `xml:"Id"`
}

func newAgent(bic string) *agent {
	if bic == "" {
		return &agent{FinInstnID: finInstnID{Othr: &other{ID: "NOTPROVIDED"}}}
	}
	return &agent{FinInstnID: finInstnID{BICFI: bic}}
}

// BtchBookg is always false: one booking per transaction, so the bank's
// statement carries each end-to-end id and every item settles on its own.

type groupHeader struct {
	MsgID    string `xml:"MsgId"`
	CreDtTm  string `xml:"CreDtTm"`
	NbOfTxs  int    `xml:"NbOfTxs"`
	CtrlSum  string `xml:"CtrlSum"`
	InitgPty party  `xml:"InitgPty"`
}

// pain.008.001.09

type pain008Doc struct {
	XMLName xml.Name    `xml:"Document"`
	Xmlns   string      `xml:"xmlns,attr"`
	GrpHdr  groupHeader `xml:"CstmrDrctDbtInitn>GrpHdr"`
	PmtInf  []ddPmtInf  `xml:"CstmrDrctDbtInitn>PmtInf"`
}

type ddPmtInf struct {
	PmtInfID     string    `xml:"PmtInfId"`
	PmtMtd       string    `xml:"PmtMtd"`
	BtchBookg    bool      `xml:"BtchBookg"`
	NbOfTxs      int       `xml:"NbOfTxs"`
	CtrlSum      string    `xml:"CtrlSum"`
	SvcLvl       string    `xml:"PmtTpInf>SvcLvl>Cd"`
	LclInstrm    string    `xml:"PmtTpInf>LclInstrm>Cd"`
	SeqTp        string    `xml:"PmtTpInf>SeqTp"`
	ReqdColltnDt string    `xml:"ReqdColltnDt"`
	Cdtr         party     `xml:"Cdtr"`
	CdtrAcct     account   `xml:"CdtrAcct"`
	CdtrAgt      *agent    `xml:"CdtrAgt"`
	ChrgBr       string    `xml:"ChrgBr"`
	CdtrSchmeID  schemeID  `xml:"CdtrSchmeId"`
	Tx           []ddTxInf `xml:"DrctDbtTxInf"`
}

type schemeID struct {
	ID     string `xml:"Id>PrvtId>Othr>Id"`
	Scheme string `xml:"Id>PrvtId>Othr>SchmeNm>Prtry"`
}

type ddTxInf struct {
	EndToEndID string  `xml:"PmtId>EndToEndId"`
	InstdAmt   amount  `xml:"InstdAmt"`
	MndtID     string  `xml:"DrctDbtTx>MndtRltdInf>MndtId"`
	DtOfSgntr  string  `xml:"DrctDbtTx>MndtRltdInf>DtOfSgntr"`
	DbtrAgt    *agent  `xml:"DbtrAgt"`
	Dbtr       party   `xml:"Dbtr"`
	DbtrAcct   account `xml:"DbtrAcct"`
	Ustrd      string  `xml:"RmtInf>Ustrd,omitempty"`
}

// pain.001.001.10

type pain001Doc struct {
	XMLName xml.Name    `xml:"Document"`
	Xmlns   string      `xml:"xmlns,attr"`
	GrpHdr  groupHeader `xml:"CstmrCdtTrfInitn>GrpHdr"`
	PmtInf  []ctPmtInf  `xml:"CstmrCdtTrfInitn>PmtInf"`
}

type ctPmtInf struct {
	PmtInfID    string    `xml:"PmtInfId"`
	PmtMtd      string    `xml:"PmtMtd"`
	BtchBookg   bool      `xml:"BtchBookg"`
	NbOfTxs     int       `xml:"NbOfTxs"`
	CtrlSum     string    `xml:"CtrlSum"`
	SvcLvl      string    `xml:"PmtTpInf>SvcLvl>Cd"`
	LclInstrm   string    `xml:"PmtTpInf>LclInstrm>Cd,omitempty"`
	ReqdExctnDt string    `xml:"ReqdExctnDt>Dt"`
	Dbtr        party     `xml:"Dbtr"`
	DbtrAcct    account   `xml:"DbtrAcct"`
	DbtrAgt     *agent    `xml:"DbtrAgt"`
	ChrgBr      string    `xml:"ChrgBr"`
	Tx          []ctTxInf `xml:"CdtTrfTxInf"`
}

type ctTxInf struct {
	EndToEndID string  `xml:"PmtId>EndToEndId"`
	InstdAmt   amount  `xml:"Amt>InstdAmt"`
	CdtrAgt    *agent  `xml:"CdtrAgt,omitempty"`
	Cdtr       party   `xml:"Cdtr"`
	CdtrAcct   account `xml:"CdtrAcct"`
	Ustrd      string  `xml:"RmtInf>Ustrd,omitempty"`
}

func marshal(doc any) ([]byte, error) {
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("collect: marshal XML: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
