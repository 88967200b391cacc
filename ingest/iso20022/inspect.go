package iso20022

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Inspect reads each file and prints its records as JSON Lines on out; a
// rejected file gets one line on errOut naming the file, where and why, and
// the others are still read. Unsupported message kinds are reported on
// errOut but do not count as failures. ok is false when any file was
// rejected.
func Inspect(paths []string, out, errOut io.Writer) (ok bool) {
	ok = true
	enc := json.NewEncoder(out)
	for _, p := range paths {
		recs, err := inspectFile(p)
		var e *Error
		switch {
		case errors.As(err, &e) && errors.Is(err, ErrUnsupported):
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
		return nil, &Error{File: path, Reason: err.Error()}
	}
	defer f.Close()
	recs, _, err := ReadAll(f, path, DefaultLimits())
	return recs, err
}
