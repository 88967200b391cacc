// Package bankfile reads any bank file recon accepts, telling its format
// from its content, never from its name: ISO 20022 XML (camt.052/053/054,
// pain.002, pacs.002, pacs.004, pain.008, pain.001: package iso20022), SWIFT
// MT940/MT942 (package swift) and CFONB 120 (package cfonb). Every reader
// gives the same records (recon.BankTransaction, recon.Statement, ...), so
// what follows — the file endpoint, `recon ingest file`, `recon inspect` —
// does not care which format a file was in.
package bankfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/reconhq/recon/ingest/cfonb"
	"github.com/reconhq/recon/ingest/iso20022"
	"github.com/reconhq/recon/ingest/swift"
)

// Format is a file format as Detect tells it.
type Format string

const (
	Unknown  Format = ""
	ISO20022 Format = "iso20022"
	SWIFT    Format = "swift" // MT940, MT942
	CFONB120 Format = "cfonb120"
)

// Expected names the formats read, for the message that refuses a file.
const Expected = "ISO 20022 XML (camt.052/053/054, pain.002, pacs.002, pacs.004, pain.008, pain.001), SWIFT MT940/MT942 or CFONB 120"

// ErrUnknownFormat: the file is none of the formats read.
var ErrUnknownFormat = errors.New("not a bank file format recon reads")

// headBytes is how much of a file Detect looks at.
const headBytes = 4096

var swiftRE = regexp.MustCompile(`(?m)(^|\{4:)[ \t]*:20:`)

// Detect tells a file's format from its first bytes (headBytes are enough).
func Detect(head []byte) Format {
	if bytes.HasPrefix(head, []byte{0xFE, 0xFF}) || bytes.HasPrefix(head, []byte{0xFF, 0xFE}) {
		return ISO20022 // UTF-16 with its byte-order mark: only XML comes so
	}
	head = bytes.TrimPrefix(head, []byte("\xEF\xBB\xBF"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '<' {
		return ISO20022
	}
	first := trimmed
	if i := bytes.IndexAny(first, "\r\n"); i >= 0 {
		first = first[:i]
	}
	if len(first) >= 100 && len(first) <= 2*cfonb.RecordLength && first[0] == '0' &&
		bytes.IndexByte([]byte("1457"), first[1]) >= 0 && digits(first[2:7]) {
		return CFONB120
	}
	if swiftRE.Match(head) {
		return SWIFT
	}
	return Unknown
}

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Limits of each reader.
type Limits struct {
	ISO   iso20022.Limits
	SWIFT swift.Limits
	CFONB cfonb.Limits
}

// DefaultLimits are each reader's.
func DefaultLimits() Limits {
	return Limits{ISO: iso20022.DefaultLimits(), SWIFT: swift.DefaultLimits(), CFONB: cfonb.DefaultLimits()}
}

// Summary describes a file that was read.
type Summary struct {
	File         string `json:"file"`
	Format       Format `json:"format"`
	Message      string `json:"message"`              // camt.053.001.02, mt940, mt942, cfonb120
	MessageID    string `json:"message_id,omitempty"` // an ISO 20022 message's MsgId: unique to the file
	Bytes        int64  `json:"bytes"`
	Statements   int    `json:"statements"`
	Transactions int    `json:"transactions"`
}

// Read detects the format of the file r and streams its records to emit,
// as the format's reader does (a failed file's emitted records are void).
// A file of no known format is refused with an error wrapping
// ErrUnknownFormat that names the formats expected.
func Read(r io.Reader, name string, lim Limits, emit func(rec any) error) (Summary, error) {
	br := bufio.NewReaderSize(r, headBytes)
	head, _ := br.Peek(headBytes) // a shorter file is all head
	sum := Summary{File: name, Format: Detect(head)}
	switch sum.Format {
	case ISO20022:
		s, err := iso20022.Read(br, name, lim.ISO, emit)
		sum.Message, sum.MessageID, sum.Bytes, sum.Statements, sum.Transactions = s.Message, s.MessageID, s.Bytes, s.Statements, s.Transactions
		return sum, err
	case SWIFT:
		s, err := swift.Read(br, name, lim.SWIFT, emit)
		sum.Message, sum.Bytes, sum.Statements, sum.Transactions = s.Message, s.Bytes, s.Statements, s.Transactions
		return sum, err
	case CFONB120:
		s, err := cfonb.Read(br, name, lim.CFONB, emit)
		sum.Message, sum.Bytes, sum.Statements, sum.Transactions = s.Message, s.Bytes, s.Statements, s.Transactions
		return sum, err
	}
	return sum, fmt.Errorf("%s: %w: expected %s", name, ErrUnknownFormat, Expected)
}

// ReadAll reads a whole file and returns its records only when all of it
// was read.
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

// Inspect reads each file and prints its records as JSON Lines on out; a
// rejected file gets one line on errOut naming the file, where and why, and
// the others are still read. ISO 20022 messages recon does not read are
// reported on errOut but do not count as failures. ok is false when any
// file was rejected.
func Inspect(paths []string, out, errOut io.Writer) (ok bool) {
	ok = true
	enc := json.NewEncoder(out)
	for _, p := range paths {
		recs, err := inspectFile(p)
		switch {
		case errors.Is(err, iso20022.ErrUnsupported):
			fmt.Fprintf(errOut, "unsupported: %v\n", err)
			continue
		case err != nil:
			fmt.Fprintf(errOut, "rejected: %v\n", err)
			ok = false
			continue
		}
		for _, rec := range recs {
			if err := enc.Encode(rec); err != nil {
				fmt.Fprintf(errOut, "%s: write: %v\n", p, err)
				return false
			}
		}
	}
	return ok
}

func inspectFile(path string) ([]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, _, err := ReadAll(f, path, DefaultLimits())
	return recs, err
}
