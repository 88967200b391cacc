package recon

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// IdentityKey derives the identity of a bank movement from bank references,
// never from its amount or dates, so that a webhook, a camt.054, a camt.052
// and a camt.053 sighting of the same money get the same key while a second
// sighting with another amount is caught as a conflict rather than posted.
//
// The first reference present wins: the account servicer reference
// (bank_reference), then the end-to-end id, the transaction id, the mandate
// id, and last the entry reference. The direction is part of the key: a
// return shares its original's end-to-end id but is another movement. It returns "" when the movement carries
// no reference at all; callers must then refuse it or supply one.
func IdentityKey(t BankTransaction) string {
	account := strings.ToUpper(strings.ReplaceAll(t.AccountIBAN, " ", ""))
	for _, r := range []struct{ kind, ref string }{
		{"acctsvcr", t.BankReference},
		{"e2e", t.EndToEndID},
		{"txid", t.TransactionID},
		{"mandate", t.MandateID},
		{"entry", t.EntryReference},
	} {
		ref := strings.TrimSpace(r.ref)
		if ref == "" || strings.EqualFold(ref, "NOTPROVIDED") {
			continue
		}
		sum := sha256.Sum256([]byte(account + "\x00" + string(t.Direction) + "\x00" + r.kind + "\x00" + ref))
		return "bt_" + hex.EncodeToString(sum[:12])
	}
	return ""
}
