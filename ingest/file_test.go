package ingest

import (
	"context"
	"strings"
	"testing"
)

const camt053 = `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>STMT-%s</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>FR7630001007940000000000106</IBAN></Id></Acct>
<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>REF-1</AcctSvcrRef></Ntry>
</Stmt></BkToCstmrStmt></Document>`

// The same file sent twice — same bytes, or the same message id in other
// bytes — is recognised and publishes nothing the second time, also after a
// restart (the memory is rebuilt from the statements topic).
func TestFileSentTwiceIsRecognised(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	ctx := context.Background()
	first := []byte(strings.Replace(camt053, "%s", "1", 1))
	if s, err := in.File(ctx, "a.xml", first); err != nil || s.Duplicate || s.Transactions != 1 {
		t.Fatalf("first: %+v %v", s, err)
	}
	if s, err := in.File(ctx, "a-again.xml", first); err != nil || !s.Duplicate {
		t.Fatalf("same bytes: %+v %v, want duplicate", s, err)
	}
	reformatted := []byte(strings.ReplaceAll(string(first), "><", ">\n<"))
	if s, err := in.File(ctx, "a-reformatted.xml", reformatted); err != nil || !s.Duplicate {
		t.Fatalf("same message id: %+v %v, want duplicate", s, err)
	}
	if n := ends(t, kc, "recon.bank-transactions.v1"); n != 1 {
		t.Fatalf("%d transaction records, want 1", n)
	}

	restarted := newIngest(t, kc, WebhookConfig{})
	if err := restarted.LoadFiles(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := restarted.File(ctx, "a.xml", first); err != nil || !s.Duplicate {
		t.Fatalf("after restart: %+v %v, want duplicate", s, err)
	}
	other := []byte(strings.Replace(camt053, "%s", "2", 1))
	if s, err := restarted.File(ctx, "b.xml", other); err != nil || s.Duplicate {
		t.Fatalf("another file: %+v %v, want published", s, err)
	}
}

// A refused input larger than a Kafka record keeps its head in the dead
// letter and the whole of it in the spool directory; a redrive reads it back.
func TestHugeRefusedFileIsSpooled(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	in.SpoolDir = t.TempDir()
	huge := []byte(`<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">` + strings.Repeat("<a>", 400000))
	if _, err := in.File(context.Background(), "deep.xml", huge); err == nil {
		t.Fatal("a 400,000-deep file was accepted")
	}
	letters, err := ReadDeadLetters(context.Background(), kc)
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters: %v %v", letters, err)
	}
	l := letters[0]
	if !l.Truncated || len(l.Raw) != MaxDeadLetterRaw || l.Size != int64(len(huge)) || l.Spooled == "" {
		t.Fatalf("letter: truncated %v raw %d size %d spooled %q", l.Truncated, len(l.Raw), l.Size, l.Spooled)
	}
	if _, err := in.redrive(context.Background(), l, true); err == nil || !strings.Contains(err.Error(), "deep.xml") && !strings.Contains(err.Error(), "depth") {
		t.Fatalf("dry-run redrive of the spooled file: %v, want the reader's refusal", err)
	}
}
