package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/reconhq/recon/schemas"
)

// An MT940 whose :20: is the same every day (STARTUMS at German savings
// banks): each day's file is published, never taken for the one before.
const mt940Day = ":20:STARTUMS\n:25:DE89370400440532013000\n:28C:00001/001\n:60F:C2601%sEUR100,00\n" +
	":61:2601%sC10,00NTRFNONREF//BK-%s\n:86:166?20EREF+E2E-%s?21SVWZ+LOAN-1\n:62F:C2601%sEUR110,00\n-\n"

// The file endpoint and `recon ingest file` read MT940 and CFONB 120 as
// they read camt, told by content, and refuse anything else by name.
func TestFileFormatsByContent(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	ctx := context.Background()
	for _, day := range []string{"05", "06"} {
		mt := strings.ReplaceAll(mt940Day, "%s", day)
		s, err := in.File(ctx, "day"+day+".sta", []byte(mt))
		if err != nil || s.Duplicate || s.Message != "mt940" || s.Transactions != 1 || s.Statements != 1 {
			t.Fatalf("MT940 of day %s: %+v %v", day, s, err)
		}
	}
	b := []byte(strings.Repeat(" ", 120))
	rec := func(code, amount string) string {
		r := append([]byte(nil), b...)
		copy(r, code+"30004    00003EUR2 00012345678  050126")
		copy(r[90:], amount)
		return string(r) + "\r\n"
	}
	cf := rec("01", "0000000001000{") + strings.Replace(rec("04", "0000000000100{"), "    ", "0501", 1) + rec("07", "0000000001100{")
	if s, err := in.File(ctx, "releve.txt", []byte(cf)); err != nil || s.Message != "cfonb120" || s.Transactions != 1 {
		t.Fatalf("CFONB 120: %+v %v", s, err)
	}
	_, err := in.File(ctx, "x.csv", []byte("date;amount\n2026-01-05;10\n"))
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Reason, "MT940") || !strings.Contains(ie.Reason, "CFONB 120") {
		t.Fatalf("unknown content: %v", err)
	}
	if n := len(committed(t, kc, schemas.TopicBankTransactions)); n != 3 {
		t.Fatalf("%d transaction records, want 3", n)
	}
}
