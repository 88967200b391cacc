package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ingest/iso20022"
)

// Every amount from outside — a file, the producer API, a webhook — is read
// by iso20022.ParseAmount: a plain decimal string, no sign, exponent or
// separator, at most 5 fraction digits and maxDigits digits in its value.

// amountJSON reads a JSON amount: a decimal string such as "12.50" (a JSON
// number is refused: no floats on money), without the spaces around it
// that XML text may have (XSD collapses them; a JSON string keeps them).
func amountJSON(raw json.RawMessage) (decimal.Decimal, error) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return decimal.Zero, fmt.Errorf(`amount must be a decimal string such as "12.50", got %s`, trunc(string(raw)))
	}
	if strings.TrimSpace(s) != s {
		return decimal.Zero, fmt.Errorf("amount %q has spaces around it", trunc(s))
	}
	return iso20022.ParseAmount(s, maxDigits)
}

// Only the amounts of a producer's transaction or loan, as given.
type (
	txnAmounts struct {
		Amount           json.RawMessage `json:"amount"`
		EntryAmount      json.RawMessage `json:"entry_amount"`
		InstructedAmount *moneyAmount    `json:"instructed_amount"`
		Charges          *moneyAmount    `json:"charges"`
	}
	moneyAmount struct {
		Amount json.RawMessage `json:"amount"`
	}
	loanAmounts struct {
		Principal json.RawMessage `json:"principal"`
		Schedule  []struct {
			Principal json.RawMessage `json:"principal"`
			Interest  json.RawMessage `json:"interest"`
			Fees      json.RawMessage `json:"fees"`
		} `json:"schedule"`
	}
)

type namedAmount struct {
	name string
	raw  json.RawMessage
}

// checkAmountsJSON reads again, with the one amount parser, every amount of
// a batch (body: a JSON array) decoded into out, which must be a
// *[]recon.BankTransaction or *[]recon.Loan. An amount absent or null is
// left to validation.
func checkAmountsJSON(body []byte, out any) error {
	check := func(where string, raw json.RawMessage) error {
		if len(raw) == 0 || string(raw) == "null" {
			return nil
		}
		if _, err := amountJSON(raw); err != nil {
			return &InputError{Where: where, Reason: err.Error()}
		}
		return nil
	}
	switch out.(type) {
	case *[]recon.BankTransaction:
		var items []txnAmounts
		if err := json.Unmarshal(body, &items); err != nil {
			return &InputError{Reason: "invalid JSON: " + err.Error()}
		}
		for i, a := range items {
			fields := []namedAmount{{"amount", a.Amount}, {"entry_amount", a.EntryAmount}}
			if a.InstructedAmount != nil {
				fields = append(fields, namedAmount{"instructed_amount.amount", a.InstructedAmount.Amount})
			}
			if a.Charges != nil {
				fields = append(fields, namedAmount{"charges.amount", a.Charges.Amount})
			}
			for _, f := range fields {
				if err := check(fmt.Sprintf("transaction[%d].%s", i, f.name), f.raw); err != nil {
					return err
				}
			}
		}
	case *[]recon.Loan:
		var items []loanAmounts
		if err := json.Unmarshal(body, &items); err != nil {
			return &InputError{Reason: "invalid JSON: " + err.Error()}
		}
		for i, l := range items {
			if err := check(fmt.Sprintf("loan[%d].principal", i), l.Principal); err != nil {
				return err
			}
			for j, in := range l.Schedule {
				for _, f := range []namedAmount{{"principal", in.Principal}, {"interest", in.Interest}, {"fees", in.Fees}} {
					if err := check(fmt.Sprintf("loan[%d].schedule[%d].%s", i, j, f.name), f.raw); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
