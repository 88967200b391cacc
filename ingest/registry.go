package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// Known is what ingest can ask synchronously of the loans and borrowers
// already published (the API view, which follows the loans and borrowers
// topics): enough to refuse a second claim on a virtual IBAN, and a loan
// posted again with other terms, with a 409 instead of letting either win
// silently. A nil function checks nothing. The view follows Kafka, so two
// claims sent within moments can both pass here; the matcher then parks
// payments to the contested IBAN instead of choosing (README, rule 6).
type Known struct {
	Loan func(id string) (recon.Loan, bool)
	// Holder names who holds a virtual IBAN: a loan id, or
	// "borrower/<id>".
	Holder func(viban string) (string, bool)
}

// ConflictError is a request that contradicts what recon already holds: a
// 409 that names the holder and what to do.
type ConflictError struct {
	Where  string
	Reason string
}

func (e *ConflictError) Error() string { return e.Where + ": " + e.Reason }

// checkClaim refuses a virtual IBAN that someone other than self holds,
// or that an earlier item of the same batch claims.
func (in *Ingest) checkClaim(where, viban, self string, batch map[string]string) error {
	if viban == "" {
		return nil
	}
	if other, ok := batch[viban]; ok && other != self {
		return &ConflictError{Where: where, Reason: fmt.Sprintf("virtual IBAN %s is claimed twice in this batch (%s and %s)", viban, other, self)}
	}
	batch[viban] = self
	if in.Known.Holder == nil {
		return nil
	}
	if holder, ok := in.Known.Holder(viban); ok && holder != self {
		return &ConflictError{Where: where, Reason: fmt.Sprintf("virtual IBAN %s is held by %s; re-assign it with PUT /v1/loans/{id} (reason, actor, effective_date) after releasing it there", viban, holder)}
	}
	return nil
}

// checkTerms refuses a loan posted again with other terms: an amendment is
// explicit (PUT /v1/loans/{id}) and audited. The same loan posted again is
// an idempotent retry.
func (in *Ingest) checkTerms(where string, l recon.Loan) error {
	if in.Known.Loan == nil {
		return nil
	}
	old, ok := in.Known.Loan(l.LoanID)
	if !ok || sameTerms(old, l) {
		return nil
	}
	return &ConflictError{Where: where, Reason: fmt.Sprintf("loan %s exists with other terms; amend it with PUT /v1/loans/%s and a reason, an actor and an effective_date", l.LoanID, l.LoanID)}
}

// sameTerms compares what a loan's holder relies on, amounts by value.
func sameTerms(a, b recon.Loan) bool {
	if a.LoanID != b.LoanID || recon.NormalizeIBAN(a.VirtualIBAN) != recon.NormalizeIBAN(b.VirtualIBAN) || a.Currency != b.Currency ||
		!a.Principal.Equal(b.Principal) || a.MandateID != b.MandateID || a.MandateSignedOn != b.MandateSignedOn ||
		a.DisbursementEndToEndID != b.DisbursementEndToEndID || a.BorrowerID != b.BorrowerID || len(a.Schedule) != len(b.Schedule) {
		return false
	}
	for i, x := range a.Schedule {
		y := b.Schedule[i]
		if x.DueDate != y.DueDate || !x.Principal.Equal(y.Principal) || !x.Interest.Equal(y.Interest) || !x.Fees.Equal(y.Fees) {
			return false
		}
	}
	return true
}

// Amendment is PUT /v1/loans/{id}: the loan's new terms, and who changes
// them, why and from when. It is kept on the audit topic with the terms it
// replaces.
type Amendment struct {
	Loan          recon.Loan `json:"loan"`
	Reason        string     `json:"reason"`
	Actor         string     `json:"actor"`
	EffectiveDate recon.Date `json:"effective_date"`
}

// Amend publishes a loan's new terms and the audit record of the change.
func (in *Ingest) Amend(ctx context.Context, a Amendment) error {
	l := a.Loan
	where := "loan " + l.LoanID
	switch {
	case a.Reason == "" || a.Actor == "" || len(a.Reason) > 1000 || len(a.Actor) > 200:
		return &InputError{Where: where, Reason: "an amendment needs a reason (up to 1000 bytes) and an actor (up to 200)"}
	case !a.EffectiveDate.Valid():
		return &InputError{Where: where, Reason: fmt.Sprintf("effective_date %q is not YYYY-MM-DD", a.EffectiveDate)}
	}
	if err := ValidateLoan(l); err != nil {
		return &InputError{Where: where, Reason: err.Error()}
	}
	l.VirtualIBAN = recon.NormalizeIBAN(l.VirtualIBAN)
	var before *recon.Loan
	if in.Known.Loan != nil {
		old, ok := in.Known.Loan(l.LoanID)
		if !ok {
			return &ConflictError{Where: where, Reason: "no such loan yet: create it with POST /v1/loans"}
		}
		if old.BorrowerID != l.BorrowerID {
			return &ConflictError{Where: where, Reason: "a loan's borrower_id cannot change (its postings live with its borrower's)"}
		}
		old.Borrower = nil // personal data stays out of the audit trail
		before = &old
	}
	if err := in.checkClaim(where, l.VirtualIBAN, l.LoanID, map[string]string{}); err != nil {
		return err
	}
	after := l
	after.Borrower = nil
	audit := recon.Audit{ID: "loan-amended-" + l.LoanID + "-" + digestOf(after, a), Kind: recon.AuditLoanAmended, Subject: l.LoanID,
		Before: before, After: &after, Reason: a.Reason, Actor: a.Actor, EffectiveDate: a.EffectiveDate, At: in.now()}
	av, _ := bus.Marshal(audit)
	loanEv, err := in.apiEvent(where, schemas.TopicLoans, schemas.TypeLoan, l.LoanID, "loan-", l)
	if err != nil {
		return err
	}
	return in.publish(ctx, []bus.Event{
		{Topic: schemas.TopicAudit, Key: l.LoanID, Type: schemas.TypeAudit, ID: audit.ID, Source: "recon/ingest/api", Time: in.now(), Value: av, Partition: -1},
		loanEv,
	})
}

// decodeAmendment reads an amendment strictly, its loan's amounts with the
// one amount parser, as POST /v1/loans does.
func decodeAmendment(body []byte, a *Amendment) error {
	var raw struct {
		Loan json.RawMessage `json:"loan"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Loan) == 0 {
		return &InputError{Reason: fmt.Sprintf("want {\"loan\": {...}, \"reason\", \"actor\", \"effective_date\"}: %v", err)}
	}
	if err := checkAmountsJSON(append(append([]byte{'['}, raw.Loan...), ']'), &[]recon.Loan{}); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(a); err != nil {
		return &InputError{Reason: "invalid JSON: " + err.Error()}
	}
	return nil
}

func digestOf(l recon.Loan, a Amendment) string {
	v, _ := bus.Marshal(struct {
		L recon.Loan
		R string
		A string
		E recon.Date
	}{l, a.Reason, a.Actor, a.EffectiveDate})
	return digest(v)
}

func (in *Ingest) handleAmend(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, MaxJSONBytes)
	var a Amendment
	if err == nil {
		err = decodeAmendment(body, &a)
	}
	if err == nil && a.Loan.LoanID != r.PathValue("loan_id") {
		err = &InputError{Where: "loan", Reason: fmt.Sprintf("loan_id %q differs from the path's %q", a.Loan.LoanID, r.PathValue("loan_id"))}
	}
	if err == nil {
		err = in.Amend(r.Context(), a)
	}
	if err != nil {
		in.fail(w, r, "amendments", err)
		return
	}
	in.reply(w, "amendments", http.StatusAccepted, map[string]any{"accepted": 1, "loan_id": a.Loan.LoanID})
}
