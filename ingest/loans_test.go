package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/schemas"
)

// A loan the matcher could not hold exactly is refused at the door, not
// accepted and then dropped while payments to its virtual IBAN go elsewhere.
func TestValidateLoanAsTheMatcherHoldsIt(t *testing.T) {
	base := recon.Loan{LoanID: "L-1", VirtualIBAN: "FR7630001007941234567890185", Currency: "EUR", Principal: decimal.RequireFromString("1000.00")}
	for _, c := range []struct {
		name, principal, want string
	}{
		{"cents", "1000.00", ""},
		{"a tenth of a cent", "1.005", "more fraction digits"},
		{"beyond the table", "9007199254740993", "too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := base
			l.Principal = decimal.RequireFromString(c.principal)
			err := ValidateLoan(l)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("ValidateLoan(principal %s) = %v, want %q", c.principal, err, c.want)
			}
		})
	}
}

// A virtual IBAN someone holds, and a loan posted again with other terms,
// are 409s naming the holder and what to do; an amendment is explicit and
// audited.
func TestLoansRegistry(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	held := recon.Loan{LoanID: "L-OLD", VirtualIBAN: "FR7630001007941234567890185", Currency: "EUR", Principal: decimal.RequireFromString("100.00")}
	in.Known = Known{
		Loan: func(id string) (recon.Loan, bool) { return held, id == held.LoanID },
		Holder: func(v string) (string, bool) {
			if v == held.VirtualIBAN {
				return held.LoanID, true
			}
			return "", false
		},
	}
	ctx := context.Background()
	var ce *ConflictError
	newcomer := held
	newcomer.LoanID = "L-NEW"
	if err := in.Loans(ctx, []recon.Loan{newcomer}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "held by L-OLD") {
		t.Fatalf("second claim: %v, want a conflict naming L-OLD", err)
	}
	if err := in.Loans(ctx, []recon.Loan{held}); err != nil {
		t.Fatalf("the same loan again: %v", err)
	}
	changed := held
	changed.Principal = decimal.RequireFromString("150.00")
	if err := in.Loans(ctx, []recon.Loan{changed}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "PUT /v1/loans/L-OLD") {
		t.Fatalf("other terms: %v, want a conflict pointing to PUT", err)
	}
	two := []recon.Loan{{LoanID: "A", VirtualIBAN: "DE89370400440532013000", Currency: "EUR", Principal: decimal.RequireFromString("1")},
		{LoanID: "B", VirtualIBAN: "de89 3704 0044 0532 0130 00", Currency: "EUR", Principal: decimal.RequireFromString("1")}}
	if err := in.Loans(ctx, two); !errors.As(err, &ce) || !strings.Contains(err.Error(), "claimed twice") {
		t.Fatalf("two claims in one batch: %v", err)
	}
	if err := in.Amend(ctx, Amendment{Loan: changed, Actor: "ops@lender", EffectiveDate: "2026-12-01"}); err == nil {
		t.Fatal("an amendment without a reason was accepted")
	}
	if err := in.Amend(ctx, Amendment{Loan: changed, Reason: "restructured", Actor: "ops@lender", EffectiveDate: "2026-12-01"}); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, kc, schemas.TopicAudit, 1)
	var a recon.Audit
	if err := json.Unmarshal(recs[0].Value, &a); err != nil || a.Kind != recon.AuditLoanAmended || a.Before == nil ||
		!a.Before.Principal.Equal(held.Principal) || !a.After.Principal.Equal(changed.Principal) || a.Actor != "ops@lender" {
		t.Fatalf("audit %+v %v", a, err)
	}
}
