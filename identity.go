package recon

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// IdentityKey names one sighting of a bank movement from its bank
// references, never from its amount or dates. The first reference present
// wins: the account servicer reference (bank_reference), then the
// end-to-end id, the transaction id, and last the entry reference. A
// mandate id is never part of it: every collection of a mandate carries
// the same one. The account and direction are part of the key: a return
// shares its original's end-to-end id but is another movement. It returns
// "" when the sighting carries none of these; callers must then name it
// otherwise (SightingKey) or refuse it.
//
// Sightings of one movement may carry different subsets of its references
// and so get different keys: the matcher recognises them as one movement
// by any shared strong reference (matcher/identity.go), within the
// partition that PartitionKey gives them all.
func IdentityKey(t BankTransaction) string {
	for _, r := range []struct{ kind, ref string }{
		{"acctsvcr", t.BankReference},
		{"e2e", t.EndToEndID},
		{"txid", t.TransactionID},
		{"entry", t.EntryReference},
	} {
		if k := SightingKey(t.AccountIBAN, t.Direction, r.kind, r.ref); k != "" {
			return k
		}
	}
	return ""
}

// SightingKey is the identity key of a movement on an account and
// direction named by one reference of the given kind ("" for an empty or
// NOTPROVIDED reference). A producer event without bank references is
// named by its producer id (kind "producer").
func SightingKey(account string, dir Direction, kind, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || strings.EqualFold(ref, "NOTPROVIDED") {
		return ""
	}
	sum := sha256.Sum256([]byte(NormalizeIBAN(account) + "\x00" + string(dir) + "\x00" + kind + "\x00" + ref))
	return "bt_" + hex.EncodeToString(sum[:12])
}

// HasStrongReference reports whether a sighting carries a reference that
// identifies its movement across channels: the account servicer
// reference, the transaction id, or an end-to-end id other than
// NOTPROVIDED.
func HasStrongReference(t BankTransaction) bool {
	for _, ref := range []string{t.BankReference, t.TransactionID, t.EndToEndID} {
		if ref = strings.TrimSpace(ref); ref != "" && !strings.EqualFold(ref, "NOTPROVIDED") {
			return true
		}
	}
	return false
}

// PartitionKey is the Kafka key of a bank transaction: its account and
// direction, the scope of identity, so that every sighting of one movement
// meets in one partition whatever references it carries.
func PartitionKey(t BankTransaction) string {
	return NormalizeIBAN(t.AccountIBAN) + "/" + string(t.Direction)
}

// NormalizeIBAN is an IBAN as recon compares and stores it: upper case,
// without spaces.
func NormalizeIBAN(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), ""))
}
