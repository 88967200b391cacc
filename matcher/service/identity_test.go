package service

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// A producer writing straight to Kafka must name a sighting as recon
// does: an id that disagrees with its references, or a sighting with
// nothing to name it by, is a dead letter with the reason.
func TestCheckIdentity(t *testing.T) {
	base := recon.BankTransaction{AccountIBAN: "DE89370400440532013000", Direction: recon.Credit, Amount: decimal.RequireFromString("10"),
		Currency: "EUR", EndToEndID: "E2E-1"}
	named := func(t recon.BankTransaction) recon.BankTransaction { t.ID = recon.IdentityKey(t); return t }
	other := named(base)
	other.EndToEndID = "E2E-2" // the id of E2E-1, the reference of E2E-2: another movement's name
	noRef := base
	noRef.EndToEndID, noRef.ProducerID = "NOTPROVIDED", "evt-7"
	noRef.ID = recon.SightingKey(noRef.AccountIBAN, noRef.Direction, "producer", "evt-7")
	nothing := noRef
	nothing.ProducerID = ""
	file := base
	file.MessageID, file.ID = "STMT-1", recon.SightingKey(base.AccountIBAN, base.Direction, "entry", "STMT-1/0/3")
	charges := named(base)
	charges.MessageID, charges.ID = "STMT-1", charges.ID+":charges"
	bad := base
	bad.ID = "bt_run1_42"
	for _, c := range []struct {
		name string
		t    recon.BankTransaction
		want string
	}{
		{"its references' identity key", named(base), ""},
		{"another movement's id", other, "disagrees with its references"},
		{"no reference, named by the producer", noRef, ""},
		{"no reference and no producer id", nothing, "no reference"},
		{"a file's entry named by its position", file, ""},
		{"a file's charge record", charges, ""},
		{"not an identity key", bad, "not an identity key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkIdentity(c.t)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("checkIdentity = %v, want %q", err, c.want)
			}
		})
	}
}
