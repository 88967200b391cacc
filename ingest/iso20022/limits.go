package iso20022

import (
	"fmt"
	"io"
)

// Limits bound everything a file can make the reader spend. Zero fields take
// the default.
type Limits struct {
	MaxFileBytes     int64 // raw bytes of one file
	MaxDepth         int   // element nesting, envelope included
	MaxElements      int   // elements in one file
	MaxTextBytes     int   // one text node, CDATA section, comment or tag
	MaxAmountDigits  int   // significant digits of one amount (ISO: totalDigits 18)
	MaxEntryElements int   // elements of one Ntry / TxInf / TxInfAndSts, which is held in memory whole
}

// MaxFractionDigits is ISO 20022's fractionDigits for amounts; more is rejected.
const MaxFractionDigits = 5

// DefaultLimits are generous for real bank files and still bound memory.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:     512 << 20,
		MaxDepth:         64,
		MaxElements:      50_000_000,
		MaxTextBytes:     64 << 10,
		MaxAmountDigits:  18,
		MaxEntryElements: 200_000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = d.MaxTextBytes
	}
	if l.MaxAmountDigits <= 0 {
		l.MaxAmountDigits = d.MaxAmountDigits
	}
	if l.MaxEntryElements <= 0 {
		l.MaxEntryElements = d.MaxEntryElements
	}
	return l
}

// limitError is returned by counter and the scanner; Read turns it into an
// *Error wrapping ErrLimit.
type limitError struct{ reason string }

func (e *limitError) Error() string { return e.reason }

// counter counts the raw bytes of a file and refuses input beyond
// MaxFileBytes; the scanner bounds each token (MaxTextBytes) itself.
type counter struct {
	r   io.Reader
	max int64
	n   int64
	err error
}

func (c *counter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		c.err = &limitError{fmt.Sprintf("file larger than MaxFileBytes (%d)", c.max)}
		return 0, c.err
	}
	return n, err
}
