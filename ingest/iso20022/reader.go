// Package iso20022 reads inbound ISO 20022 bank files — camt.052 reports,
// camt.053 statements, camt.054 notifications, pain.002/pacs.002 status
// reports and pacs.004 returns, in every version banks send — into recon
// records, streaming one entry at a time.
//
// The reader walks the tokens of its own XML scanner (scan.go), which
// accepts what encoding/xml does; only one bounded unit (an Ntry, a
// Bal, a TxInfAndSts, a TxInf) is held in memory at a time, so memory does
// not grow with file size. Amounts are exact decimals read from the XML
// text. Everything from outside is bounded by Limits, and a file is
// rejected whole, with an *Error naming the element path, the byte offset
// and the reason, when any part of it is bad: DOCTYPE/entities, encodings
// other than UTF-8/latin1/windows-1252 (a byte-order mark is read: UTF-8's
// is skipped, a UTF-16 file with one is decoded), bad UTF-8, trailing content or a
// second root, duplicated amounts, amounts with exponents or more than 5
// fraction digits.
//
// Identity of a transaction record: recon.IdentityKey over its references
// (bank reference, end-to-end id, transaction id, mandate id). The bank
// reference is TxDtls/Refs/AcctSvcrRef, else the entry's AcctSvcrRef when
// the entry has a single detail. When no reference yields a key, the entry
// reference becomes NtryRef+"#<detail index>" (1-based), or, without an
// NtryRef, "<message id>/<statement index>/<entry index>#<detail index>";
// an entry without details keeps NtryRef as is. Two details of one entry
// that would share a key get the entry-reference key instead. Records of an
// entry always sum (signed by direction, in the entry currency) to the
// entry's amount: charges that make up a difference become their own record
// (id = parent id + ":charges", IsCharge), and whatever still differs
// becomes a Remainder record (id = entry key + ":remainder").
//
// Virtual IBAN: for a credit, TxDtls/RltdPties/CdtrAcct/Id/IBAN when it
// differs from the statement account; for a debit, DbtrAcct likewise.
package iso20022

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/reconhq/recon"
)

// Summary describes a file that was read.
type Summary struct {
	File          string `json:"file"`
	Message       string `json:"message"` // e.g. camt.053.001.02
	MessageID     string `json:"message_id,omitempty"`
	Bytes         int64  `json:"bytes"`
	Elements      int    `json:"elements"`
	Statements    int    `json:"statements"`
	Entries       int    `json:"entries"`
	Transactions  int    `json:"transactions"`
	StatusReports int    `json:"status_reports"`
	Returns       int    `json:"returns"`
	Expected      int    `json:"expected,omitempty"` // pain.008/pain.001 transactions
}

var kindRE = regexp.MustCompile(`^([a-z]{4}\.\d{3})\.(\d{3}\.\d{2}(?:\.[a-z]{2}\.\d{2})?)$`)

// Kind tells the message and version of a Document namespace:
// "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02" → ("camt.053", "001.02");
// Swiss SIX namespaces such as ".../pain.002.001.03.ch.02.xsd" are read too.
func Kind(namespace string) (msg, version string, ok bool) {
	ns := strings.TrimSpace(namespace)
	var id string
	switch {
	case strings.HasPrefix(ns, "urn:iso:std:iso:20022:tech:xsd:"):
		id = strings.TrimPrefix(ns, "urn:iso:std:iso:20022:tech:xsd:")
	case strings.HasPrefix(ns, "http://") || strings.HasPrefix(ns, "https://"):
		id = strings.TrimSuffix(ns[strings.LastIndexByte(ns, '/')+1:], ".xsd")
	default:
		return "", "", false
	}
	m := kindRE.FindStringSubmatch(id)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// messageElement is the element under Document for each message read.
var messageElement = map[string]string{
	"camt.052": "BkToCstmrAcctRpt",
	"camt.053": "BkToCstmrStmt",
	"camt.054": "BkToCstmrDbtCdtNtfctn",
	"pain.002": "CstmrPmtStsRpt",
	"pacs.002": "FIToFIPmtStsRpt",
	"pacs.004": "PmtRtr",
	"pain.008": "CstmrDrctDbtInitn",
	"pain.001": "CstmrCdtTrfInitn",
}

// Read streams the records of one file to emit as it reads: recon.Statement,
// recon.BankTransaction, recon.StatusReport and recon.Return values. name
// is used in errors only. On error the file is rejected whole, but records
// already emitted stay emitted: a streaming caller must buffer or treat
// everything emitted for a failed file as void (ReadAll does that for small
// files). An error from emit is returned as is.
func Read(r io.Reader, name string, lim Limits, emit func(rec any) error) (Summary, error) {
	lim = lim.withDefaults()
	src := &counter{r: r, max: lim.MaxFileBytes}
	text, utf16 := unBOM(src)
	rd := &reader{file: name, lim: lim, sc: newScanner(text, lim.MaxTextBytes), emit: emit}
	rd.sc.utf16 = utf16
	rd.sum.File = name
	err := rd.run()
	rd.sum.Bytes = src.n
	rd.sum.Elements = rd.elements
	return rd.sum, err
}

// ReadAll reads a whole file and returns its records only when all of it
// was read: the way to read small files without caring about streaming.
func ReadAll(r io.Reader, name string, lim Limits) ([]any, Summary, error) {
	var recs []any
	sum, err := Read(r, name, lim, func(rec any) error {
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, sum, err
	}
	return recs, sum, nil
}

type reader struct {
	file     string
	lim      Limits
	sc       *scanner
	emit     func(any) error
	stack    []frame
	elements int
	sum      Summary
	t        tree
	source   string // e.g. camt.053.001.02
	msgID    string
	sawDoc   bool
	emitErr  error
	recs     []recon.BankTransaction
	details  []int32
	codes    map[[3]string]string // bank transaction codes joined
	lastDate recon.Date           // the last date found valid
	inUnit   bool                 // a unit is being read into r.t
	cur      int32                // its open node
}

type frame struct {
	name   string
	idx    int
	counts map[string]int
}

// errEmit marks an error from the caller's emit, returned unwrapped.
type errEmit struct{ err error }

func (e errEmit) Error() string { return e.err.Error() }

func (r *reader) send(rec any) error {
	if err := r.emit(rec); err != nil {
		r.emitErr = err
		return errEmit{err}
	}
	return nil
}

func (r *reader) run() error {
	err := r.document()
	if r.emitErr != nil {
		return r.emitErr
	}
	return err
}

// document reads the prolog, the root (a Document or any envelope around
// one) and checks nothing follows it.
func (r *reader) document() error {
	for {
		tok, err := r.token()
		if err == io.EOF {
			return r.fail("", "no root element")
		}
		if err != nil {
			return err
		}
		switch tok {
		case tokStart:
			name := r.sc.name.local
			if err := r.root(name); err != nil {
				return err
			}
			if !r.sawDoc {
				return r.fail(name, "no ISO 20022 Document element")
			}
			return r.trailer()
		case tokText:
			if !blank(r.sc.text) {
				return r.fail("", "text before the root element")
			}
		}
	}
}

func (r *reader) root(name string) error {
	if name == "Document" {
		return r.message(name)
	}
	return r.wrapper(name)
}

// wrapper descends an envelope (BizMsgEnvlp, <message>, RequestPayload, ...)
// to its Document, skipping the AppHdr.
func (r *reader) wrapper(name string) error {
	return r.children(name, func(name string) error {
		switch name {
		case "Document":
			if r.sawDoc {
				return r.fail(r.sub("Document"), "second Document in one file")
			}
			return r.message(name)
		case "AppHdr":
			return r.skip(name)
		}
		return r.wrapper(name)
	})
}

// trailer refuses anything but blanks, comments and processing instructions
// after the root element.
func (r *reader) trailer() error {
	for {
		tok, err := r.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch tok {
		case tokStart:
			return r.fail(r.sc.name.local, "second root element after the document")
		case tokText:
			if !blank(r.sc.text) {
				return r.fail("", "trailing text after the root element")
			}
		}
	}
}

// message sniffs the message kind from the Document namespace and reads it;
// it is called on the Document start tag, whose attributes are still at hand.
func (r *reader) message(name string) error {
	r.sawDoc = true
	ns := r.sc.nsOf(r.sc.name, true)
	if ns == "" {
		return r.fail(r.sub("Document"), "Document has no namespace, so the message kind is unknown")
	}
	msg, ver, ok := Kind(ns)
	if !ok {
		return r.fail(r.sub("Document"), fmt.Sprintf("namespace %q is not an ISO 20022 message namespace", ns))
	}
	r.source = msg + "." + ver
	r.sum.Message = r.source
	want, ok := messageElement[msg]
	if msg == "pain.001" && !pain001Readable(ver) {
		ok = false
	}
	if !ok {
		return &Error{File: r.file, Path: r.path() + "/Document", Offset: r.sc.offset(),
			Reason: fmt.Sprintf("%s is not read by this reader (camt.052/053/054, pain.002, pacs.002, pacs.004, pain.008, pain.001.001.10+ are)", r.source), Err: ErrUnsupported}
	}
	seen := false
	err := r.children(name, func(se string) error {
		if seen || !isMessage(se, want) {
			return r.fail(r.sub(se), fmt.Sprintf("unexpected element %s in a %s Document (want one %s)", se, r.source, want))
		}
		seen = true
		switch msg {
		case "pain.002", "pacs.002":
			return r.statusReport(se)
		case "pacs.004":
			return r.paymentReturn(se)
		case "pain.008":
			return r.initiation(se, recon.Collection)
		case "pain.001":
			return r.initiation(se, recon.Disbursement)
		}
		return r.camt(se)
	})
	if err == nil && !seen {
		return r.fail(r.sub("Document"), fmt.Sprintf("Document has no %s", want))
	}
	return err
}

// isMessage accepts the element name of a message, with the "V01" suffix
// version 1 messages carried (BkToCstmrAcctRptV01).
func isMessage(local, want string) bool {
	rest, ok := strings.CutPrefix(local, want)
	return ok && (rest == "" || (len(rest) == 3 && rest[0] == 'V' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' && rest[2] <= '9'))
}

// sub is the path of a child of the innermost open element.
func (r *reader) sub(name string) string {
	if p := r.path(); p != "" {
		return p + "/" + name
	}
	return name
}

// children pushes the element just started, named name, and calls fn for
// each child element; fn must read the child to its end (subtree, skip or
// children).
func (r *reader) children(name string, fn func(name string) error) error {
	if err := r.push(name); err != nil {
		return err
	}
	for {
		tok, err := r.next()
		if err != nil {
			return err
		}
		switch tok {
		case tokStart:
			if err := fn(r.sc.name.local); err != nil {
				return err
			}
		case tokEnd:
			r.stack = r.stack[:len(r.stack)-1]
			return nil
		}
	}
}

// skip reads past an element the reader does not need, still within limits.
func (r *reader) skip(name string) error {
	depth := 1
	if len(r.stack)+depth > r.lim.MaxDepth {
		return r.limit(r.sub(name), fmt.Sprintf("nesting deeper than MaxDepth (%d)", r.lim.MaxDepth))
	}
	for depth > 0 {
		tok, err := r.next()
		if err != nil {
			return err
		}
		switch tok {
		case tokStart:
			depth++
			if len(r.stack)+depth > r.lim.MaxDepth {
				return r.limit(r.sub(name)+"/…/"+r.sc.name.local, fmt.Sprintf("nesting deeper than MaxDepth (%d)", r.lim.MaxDepth))
			}
		case tokEnd:
			depth--
		}
	}
	return nil
}

func (r *reader) push(name string) error {
	idx := r.childIndex(name)
	if len(r.stack)+1 > r.lim.MaxDepth {
		return r.limit(r.sub(name), fmt.Sprintf("nesting deeper than MaxDepth (%d)", r.lim.MaxDepth))
	}
	r.stack = append(r.stack, frame{name: name, idx: idx})
	return nil
}

// childIndex counts a child of the innermost open element and returns its
// 1-based index among same-named siblings.
func (r *reader) childIndex(name string) int {
	if len(r.stack) == 0 {
		return 1
	}
	f := &r.stack[len(r.stack)-1]
	if f.counts == nil {
		f.counts = make(map[string]int, 4)
	}
	f.counts[name]++
	return f.counts[name]
}

func (r *reader) path() string { return r.pathTo(len(r.stack)) }

// pathTo is the path of the outermost n open elements.
func (r *reader) pathTo(n int) string {
	var b strings.Builder
	for i, f := range r.stack[:n] {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(step(f.name, f.idx))
	}
	return b.String()
}

// token is the next element, end or text token, counted and checked
// (comments and processing instructions are passed over); io.EOF at the end.
func (r *reader) token() (tokKind, error) {
	for {
		tok, err := r.sc.next()
		if err != nil {
			return tok, r.scanError(err)
		}
		switch tok {
		case tokEOF:
			return tok, io.EOF
		case tokComment, tokProcInst:
			continue
		case tokStart:
			r.elements++
			if r.elements > r.lim.MaxElements {
				return tok, r.limit(r.where()+"/"+r.sc.name.local, fmt.Sprintf("more than MaxElements (%d) elements", r.lim.MaxElements))
			}
		}
		return tok, nil
	}
}

// scanError gives a scanner error the coordinates of where it happened.
func (r *reader) scanError(err error) error {
	var le *limitError
	if errors.As(err, &le) {
		return r.limit(r.where(), le.reason)
	}
	var se *syntaxError
	if errors.As(err, &se) {
		return r.fail(r.where(), "malformed XML: line "+strconv.Itoa(se.line)+": "+se.msg)
	}
	return r.fail(r.where(), err.Error())
}

// next is token inside an element, where the end of input is an error.
func (r *reader) next() (tokKind, error) {
	tok, err := r.token()
	if err == io.EOF {
		return tok, r.fail(r.path(), "unexpected end of file")
	}
	return tok, err
}

// where is the path of the innermost open element, inside a unit too.
func (r *reader) where() string {
	if r.inUnit {
		return r.t.pathOf(r, r.cur)
	}
	return r.path()
}

func (r *reader) fail(path, reason string) error {
	return &Error{File: r.file, Path: path, Offset: r.sc.offset(), Reason: reason}
}

func (r *reader) limit(path, reason string) error {
	return &Error{File: r.file, Path: path, Offset: r.sc.offset(), Reason: reason, Err: ErrLimit}
}

// failAt is an error about node n of the current unit.
func (r *reader) failAt(n int32, reason string) error {
	off := r.sc.offset()
	if n >= 0 && int(n) < len(r.t.nodes) {
		off = r.t.nodes[n].off
	}
	return &Error{File: r.file, Path: r.t.pathOf(r, n), Offset: off, Reason: reason}
}
