package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reconhq/recon/schemas"
)

// post sends body to path on in's handlers and decodes the JSON answer.
func post(t *testing.T, in *Ingest, path, body string) (int, map[string]any) {
	t.Helper()
	mux := http.NewServeMux()
	in.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: answer %d %q is not JSON: %v", path, rec.Code, rec.Body.String(), err)
	}
	return rec.Code, out
}

func txnJSON(id, remittance string) string {
	return fmt.Sprintf(`{"id":%q,"account_iban":"FR4630001007940000000000106","direction":"credit","amount":"10.00","currency":"EUR","remittance_info":%q}`, id, remittance)
}

// A record larger than a Kafka record is bad input (400), never "retry"
// (503), and a batch holding one stores nothing.
func TestOversizedRecordIsRefused(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	huge := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name, path, body, where string
	}{
		{"transaction", "/v1/bank/transactions", txnJSON("t1", huge), "transaction[0]"},
		{"batch [ok, huge]", "/v1/bank/transactions", "[" + txnJSON("ok", "fine") + "," + txnJSON("t2", huge) + "]", "transaction[1]"},
		{"loan", "/v1/loans", `{"loan_id":"L1","virtual_iban":"FR4630001007940000000000106","currency":"EUR","principal":"100","borrower":{"name":"` + huge + `"}}`, "loan[0]"},
	} {
		code, out := post(t, in, tc.path, tc.body)
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), tc.where) || !strings.Contains(fmt.Sprint(out["error"]), "Kafka record limit") {
			t.Errorf("%s: %d %v, want 400 naming %s and the record limit", tc.name, code, out["error"], tc.where)
		}
	}
	for _, topic := range []string{schemas.TopicBankTransactions, schemas.TopicLoans} {
		if n := len(committed(t, kc, topic)); n != 0 {
			t.Errorf("%s: %d records stored, want 0", topic, n)
		}
	}
}

// When Kafka's limit is below ingest's (a broker configured lower), the
// records it refuses are reported one by one as refused, not as "retry":
// a batch stored in part says which items were stored (207).
func TestRecordKafkaRefusesIsReportedPerItem(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	in.MaxRecordBytes = 8 << 20 // above the producer's 1,000,012-byte batch limit
	huge := strings.Repeat("x", 1<<20)

	code, out := post(t, in, "/v1/bank/transactions", txnJSON("alone", huge))
	if code != http.StatusBadRequest {
		t.Fatalf("one refused record: %d %v, want 400", code, out)
	}
	code, out = post(t, in, "/v1/bank/transactions", "["+txnJSON("ok", "fine")+","+txnJSON("big", huge)+"]")
	refused, _ := out["refused"].([]any)
	if code != http.StatusMultiStatus || out["accepted"] != 1.0 || len(refused) != 1 {
		t.Fatalf("batch [ok, huge]: %d %v, want 207 with 1 accepted and 1 refused", code, out)
	}
	if r := refused[0].(map[string]any); r["index"] != 1.0 || r["retry"] != false || !strings.Contains(fmt.Sprint(r["reason"]), "MESSAGE_TOO_LARGE") {
		t.Errorf("refused item: %v, want index 1, no retry, MESSAGE_TOO_LARGE", r)
	}
	if n := len(committed(t, kc, schemas.TopicBankTransactions)); n != 1 {
		t.Errorf("%d transactions stored, want 1", n)
	}
}

// camtHuge is a camt.053 with three entries, the second carrying a
// remittance text of about size bytes (in 60 KB Ustrd lines).
func camtHuge(size int) []byte {
	var ustrd strings.Builder
	for n := 0; n < size; n += 60_000 {
		ustrd.WriteString("<Ustrd>" + strings.Repeat("r", 60_000) + "</Ustrd>")
	}
	entry := func(ref, rmt string) string {
		return `<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>` + ref +
			`</AcctSvcrRef><NtryDtls><TxDtls><RmtInf>` + rmt + `</RmtInf></TxDtls></NtryDtls></Ntry>`
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>STMT-HUGE</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>FR4630001007940000000000106</IBAN></Id></Acct>` +
		entry("REF-1", "<Ustrd>one</Ustrd>") + entry("REF-2", ustrd.String()) + entry("REF-3", "<Ustrd>three</Ustrd>") +
		`</Stmt></BkToCstmrStmt></Document>`)
}

// Inside a file, a record too large for Kafka becomes a dead letter with
// its coordinates and bytes (spooled whole), and the rest of the file is
// published: whether ingest's own check or Kafka refuses it.
func TestFileRecordTooLargeIsDeadLettered(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int
	}{
		{"ingest's limit", 0},
		{"Kafka's limit", 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, kc := kafkaFor(t)
			in := newIngest(t, kc, WebhookConfig{})
			in.SpoolDir = t.TempDir()
			in.MaxRecordBytes = tc.maxBytes
			s, err := in.File(context.Background(), "huge.xml", camtHuge(1_200_000))
			if err != nil || s.Transactions != 2 || s.Statements != 1 || len(s.DeadLetters) != 1 {
				t.Fatalf("file: %+v %v, want 2 transactions, 1 statement, 1 dead letter", s, err)
			}
			if d := s.DeadLetters[0]; d.Where != "huge.xml: statement 1, record 2" || d.ID == "" || d.Reason == "" {
				t.Errorf("dead letter %+v, want statement 1, record 2, with id and reason", d)
			}
			letters, err := ReadDeadLetters(context.Background(), kc)
			if err != nil || len(letters) != 1 {
				t.Fatalf("dead letters: %d %v, want 1", len(letters), err)
			}
			if l := letters[0]; !strings.Contains(l.Where, "statement 1, record 2") || !l.Truncated || l.Spooled == "" || l.Size < 1_200_000 {
				t.Errorf("letter where %q truncated %v spooled %q size %d", l.Where, l.Truncated, l.Spooled, l.Size)
			}
			if n := len(committed(t, kc, schemas.TopicBankTransactions)); n != 2 {
				t.Errorf("%d transactions stored, want 2", n)
			}
		})
	}
}

// The HTTP layer answers 413 for a body over the limit and 408 for one that
// does not arrive in time, on the file and JSON endpoints; a file with a
// UTF-8 byte-order mark is accepted.
func TestBodyLimitsAndBOM(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	mux := http.NewServeMux()
	in.Register(mux)
	send := func(path string, body io.Reader, length int64) int {
		req := httptest.NewRequest(http.MethodPost, path, body)
		req.ContentLength = length
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		name   string
		path   string
		body   io.Reader
		length int64
		want   int
	}{
		{"file, declared over the limit", "/v1/bank/files", strings.NewReader("<x/>"), MaxFileBytes + 1, http.StatusRequestEntityTooLarge},
		{"JSON, chunked over the limit", "/v1/bank/transactions", strings.NewReader("[" + strings.Repeat(" ", MaxJSONBytes) + "]"), -1, http.StatusRequestEntityTooLarge},
		{"file, too slow", "/v1/bank/files", io.MultiReader(strings.NewReader("<?xml"), timeoutReader{}), -1, http.StatusRequestTimeout},
		{"JSON, too slow", "/v1/loans", io.MultiReader(strings.NewReader("[{"), timeoutReader{}), -1, http.StatusRequestTimeout},
		{"file with a UTF-8 BOM", "/v1/bank/files?name=bom.xml", bytes.NewReader(append([]byte{0xEF, 0xBB, 0xBF}, camtWith("BOM-1", 1)...)), -1, http.StatusAccepted},
	} {
		if got := send(tc.path, tc.body, tc.length); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := len(committed(t, kc, schemas.TopicDeadLetters)); n != 0 {
		t.Errorf("%d dead letters for bodies that never arrived whole", n)
	}
}
