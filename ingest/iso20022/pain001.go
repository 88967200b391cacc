package iso20022

import (
	"strconv"
	"strings"
)

// pain001Readable reports whether a pain.001 version is read: 001.10 and
// later, the versions recon writes. Earlier ones stay unsupported (and
// reported as such), as they were before recon wrote pain.001 at all.
func pain001Readable(version string) bool {
	rest, ok := strings.CutPrefix(version, "001.")
	if !ok || len(rest) < 2 {
		return false
	}
	v, err := strconv.Atoi(rest[:2])
	return err == nil && v >= 10
}
