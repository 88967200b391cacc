package swift

import (
	"errors"
	"fmt"
)

// Limits bound everything a file can make the reader spend. Zero fields
// take the default.
type Limits struct {
	MaxFileBytes     int64 // raw bytes of one file
	MaxLineBytes     int   // one line (SWIFT's is 65 characters; banks pad and exceed it)
	MaxFieldLines    int   // lines of one field, its tag line included
	MaxFieldBytes    int   // one field's text (a :86: is 6 × 65 characters in SWIFT, more at some banks)
	MaxStatements    int   // messages (statements, interim reports) in one file
	MaxEntries       int   // :61: statement lines in one file
	MaxPreambleLines int   // lines before a message's :20: that are no field (bank headers, envelopes)
	MaxAmountDigits  int   // significant digits of one amount (SWIFT: 15d, so at most 14)
}

// DefaultLimits are generous for real bank files and still bound memory.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:     256 << 20,
		MaxLineBytes:     1024,
		MaxFieldLines:    200,
		MaxFieldBytes:    16 << 10,
		MaxStatements:    100_000,
		MaxEntries:       5_000_000,
		MaxPreambleLines: 16,
		MaxAmountDigits:  18,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = d.MaxLineBytes
	}
	if l.MaxFieldLines <= 0 {
		l.MaxFieldLines = d.MaxFieldLines
	}
	if l.MaxFieldBytes <= 0 {
		l.MaxFieldBytes = d.MaxFieldBytes
	}
	if l.MaxStatements <= 0 {
		l.MaxStatements = d.MaxStatements
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxPreambleLines <= 0 {
		l.MaxPreambleLines = d.MaxPreambleLines
	}
	if l.MaxAmountDigits <= 0 {
		l.MaxAmountDigits = d.MaxAmountDigits
	}
	return l
}

// ErrLimit: the input exceeds one of Limits. Every error Read returns is
// an *Error, wrapping ErrLimit when a bound was crossed.
var ErrLimit = errors.New("limit exceeded")

// Error is a rejected file with its coordinates: the line (1-based) and
// the field (":61:", or "" for the file's structure).
type Error struct {
	File   string
	Line   int
	Field  string
	Reason string
	Err    error // ErrLimit or nil
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }
