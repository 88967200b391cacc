package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

const camt053 = `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>STMT-%s</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>FR4630001007940000000000106</IBAN></Id></Acct>
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
	if n := len(committed(t, kc, schemas.TopicBankTransactions)); n != 1 {
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

// camtWith is a camt.053 of one statement with n booked entries REF-1..n.
func camtWith(msgID string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>%s</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>FR4630001007940000000000106</IBAN></Id></Acct>
`, msgID)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `<Ntry><Amt Ccy="EUR">%d.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>REF-%d</AcctSvcrRef></Ntry>
`, i, i)
	}
	b.WriteString(`</Stmt></BkToCstmrStmt></Document>`)
	return []byte(b.String())
}

// committed is every data record of topic a read-committed consumer sees.
func committed(t *testing.T, kc bus.Config, topic string) []*kgo.Record {
	t.Helper()
	parts := make([]int32, kc.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	var recs []*kgo.Record
	_, err := bus.Replay(context.Background(), kc, topic, parts, func(r *kgo.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// failProduce lets the first pass produce requests through and fails the
// next one for good (INVALID_RECORD: not retried), as a broker refusing a
// write midway through a file would.
func failProduce(c *kfake.Cluster, pass int32) {
	var seen atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n := seen.Add(1); n != pass+1 {
			return nil, nil, false
		}
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// A file whose one transaction fails midway is answered "unavailable",
// leaves nothing a read-committed consumer sees, is not remembered, and is
// published whole when sent again.
func TestFileFailedMidwayIsNotHalfStored(t *testing.T) {
	cluster, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	ctx := context.Background()
	file := camtWith("STMT-MID", 50)
	failProduce(cluster, 0)
	if s, err := in.File(ctx, "mid.xml", file); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("failed publish: %+v %v, want ErrUnavailable", s, err)
	}
	for _, topic := range []string{schemas.TopicBankTransactions, schemas.TopicStatements} {
		if n := len(committed(t, kc, topic)); n != 0 {
			t.Fatalf("%s: %d committed records after a failed file, want 0", topic, n)
		}
	}
	s, err := in.File(ctx, "mid.xml", file)
	if err != nil || s.Duplicate || s.Transactions != 50 || s.Statements != 1 || s.KafkaTransactions != 1 {
		t.Fatalf("re-sent: %+v %v, want 50 transactions and 1 statement published in 1 transaction", s, err)
	}
	if n := len(committed(t, kc, schemas.TopicBankTransactions)); n != 50 {
		t.Fatalf("%d transactions committed, want 50", n)
	}
	if s, err := in.File(ctx, "mid.xml", file); err != nil || !s.Duplicate {
		t.Fatalf("sent a third time: %+v %v, want duplicate", s, err)
	}
}

// A file split into several transactions is remembered only once its last
// transaction (its statements, marked) committed: a failure after the first
// transactions leaves it unknown to a restarted ingest, and re-sending it
// stores every record.
func TestFileInSeveralTransactions(t *testing.T) {
	cluster, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	in.Files.MaxRecordsPerTransaction = 4 // 10 entries + 1 statement: 3 transactions
	ctx := context.Background()
	file := camtWith("STMT-SPLIT", 10)

	failProduce(cluster, 1) // the first transaction commits, the second fails
	_, err := in.File(ctx, "split.xml", file)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not complete") {
		t.Fatalf("failed second transaction: %v, want ErrUnavailable saying the file is not complete", err)
	}
	if n := len(committed(t, kc, schemas.TopicStatements)); n != 0 {
		t.Fatalf("%d statements committed before the file completed, want 0", n)
	}
	restarted := newIngest(t, kc, WebhookConfig{})
	restarted.Files.MaxRecordsPerTransaction = 4
	if err := restarted.LoadFiles(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := restarted.File(ctx, "split.xml", file)
	if err != nil || s.Duplicate || s.Transactions != 10 || s.Statements != 1 || s.KafkaTransactions != 3 {
		t.Fatalf("re-sent: %+v %v, want every record published in 3 transactions", s, err)
	}
	ids := map[string]bool{}
	for _, r := range committed(t, kc, schemas.TopicBankTransactions) {
		var bt recon.BankTransaction
		if err := json.Unmarshal(r.Value, &bt); err != nil {
			t.Fatal(err)
		}
		ids[bt.ID] = true
	}
	if len(ids) != 10 {
		t.Fatalf("%d distinct transactions committed, want 10", len(ids))
	}
	sts := committed(t, kc, schemas.TopicStatements)
	if len(sts) != 1 || bus.Header(sts[0], HeaderFileComplete) == "" {
		t.Fatalf("statements %d, want 1 marked %s", len(sts), HeaderFileComplete)
	}
	again := newIngest(t, kc, WebhookConfig{})
	if err := again.LoadFiles(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := again.File(ctx, "split.xml", file); err != nil || !s.Duplicate {
		t.Fatalf("after completion and restart: %+v %v, want duplicate", s, err)
	}
}

// A bank's statement whose account fails the IBAN check (public sample
// files do, README) is published all the same, the invalid IBANs counted.
func TestFileWithInvalidIBANIsCounted(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	ctx := context.Background()
	valid := []byte(strings.Replace(camt053, "%s", "valid", 1))
	if s, err := in.File(ctx, "valid.xml", valid); err != nil || s.InvalidIBANs != 0 {
		t.Fatalf("valid: %+v %v, want no invalid IBAN", s, err)
	}
	bad := []byte(strings.NewReplacer("%s", "bad", "FR4630001007940000000000106", "FR7630001007940000000000106").Replace(camt053))
	s, err := in.File(ctx, "bad.xml", bad)
	if err != nil || s.Transactions != 1 || s.Statements != 1 || s.InvalidIBANs != 2 {
		t.Fatalf("bad: %+v %v, want published with 2 invalid IBANs (statement and entry account)", s, err)
	}
}
