package iso20022

import (
	"errors"
	"fmt"
)

// Sentinels a caller decides on; every error Read returns is an *Error that
// wraps at most one of them.
var (
	// ErrUnsupported: the file is an ISO 20022 message this package does not
	// read (pain.001, pacs.008, ...). Callers report it, not count it as bad.
	ErrUnsupported = errors.New("unsupported message")
	// ErrLimit: the input exceeds one of Limits.
	ErrLimit = errors.New("limit exceeded")
)

// Error is a rejected file with its coordinates: the element path
// (Document/BkToCstmrStmt/Stmt[2]/Ntry[17]/Amt) and the byte offset in the
// decoded input (for a latin1 file, the offset in its UTF-8 conversion).
type Error struct {
	File   string
	Path   string
	Offset int64
	Reason string
	Err    error // ErrUnsupported, ErrLimit, or nil
}

func (e *Error) Error() string {
	s := e.File
	if e.Path != "" {
		s += ": " + e.Path
	}
	return fmt.Sprintf("%s @%d: %s", s, e.Offset, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }
