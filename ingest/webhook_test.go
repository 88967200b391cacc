package ingest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

const (
	testSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes
	otherSecret = "whsec_c2VjcmV0LXRoYXQtaXMtbm90LWNvbmZpZ3VyZWQ="
	testToken   = "memo-bearer-token-0123456789"
	bankToken   = "bank-api-token-abcdef"
	lenderIBAN  = "DE89370400440532013000"
)

var testNow = time.Date(2024, 8, 1, 9, 30, 0, 0, time.UTC)

// kafkaFor starts an in-process broker with recon's topics.
func kafkaFor(t testing.TB) (*kfake.Cluster, bus.Config) {
	t.Helper()
	names := make([]string, len(schemas.Topics))
	for i, tp := range schemas.Topics {
		names[i] = tp.Name
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, names...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster, bus.Config{Brokers: cluster.ListenAddrs(), Partitions: 3, ReplicationFactor: 1, ClientID: "webhook-test"}
}

// newIngest is an Ingest on kc with a fixed clock and webhooks enabled.
func newIngest(t testing.TB, kc bus.Config, cfg WebhookConfig) *Ingest {
	t.Helper()
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	in := New(cl, kc, NewMetrics(nil))
	t.Cleanup(in.Close)
	in.now = func() time.Time { return testNow }
	if cfg.Secrets == nil && cfg.BearerTokens == nil {
		cfg.Secrets, cfg.BearerTokens = []string{testSecret}, []string{testToken}
	}
	if cfg.AccountIBAN == "" {
		cfg.AccountIBAN = lenderIBAN
	}
	if err := in.EnableWebhooks(cfg, nil); err != nil {
		t.Fatal(err)
	}
	return in
}

type answer struct {
	code int
	body map[string]any
	raw  string
	hdr  http.Header
}

// deliver posts body to the receiver with headers h.
func deliver(t *testing.T, in *Ingest, h http.Header, body []byte) answer {
	t.Helper()
	mux := http.NewServeMux()
	in.Register(mux)
	req := httptest.NewRequest(http.MethodPost, "/v1/bank/webhooks", strings.NewReader(string(body)))
	for k, v := range h {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	a := answer{code: rec.Code, raw: rec.Body.String(), hdr: rec.Header()}
	_ = json.Unmarshal(rec.Body.Bytes(), &a.body)
	return a
}

func signed(t *testing.T, secret, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	h, err := SignWebhook(secret, id, at, body)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// ends sums the end offsets of topic: how many records it holds.
func ends(t *testing.T, kc bus.Config, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// consume reads the n first records of topic.
func consume(t *testing.T, kc bus.Config, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: got %d records, want %d", topic, len(recs), n)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func fatEvent(id, ref string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"type":"transaction.created","data":{
		"id":"tx_%s","account":{"iban":"DE89 3704 0044 0532 0130 00"},"virtual_iban":"DE02120300000000202051",
		"side":"credit","amount":"125.50","currency":"EUR","status":"booked",
		"booking_date":"2024-08-01","value_date":"2024-08-01T00:00:00Z","end_to_end_id":"E2E-%s","bank_reference":%q,
		"remittance_info":"LOAN-42 August","counterparty":{"name":"Max Borrower","iban":"DE02120300000000202051","bic":"BYLADEM1001"}}}`, id, id, id, ref))
}

func wantKey(ref string) string {
	return recon.IdentityKey(recon.BankTransaction{AccountIBAN: lenderIBAN, Direction: recon.Credit, BankReference: ref})
}

func TestWebhookSignedPublishes(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	body := fatEvent("evt_1", "ACCTSVCR-1")
	a := deliver(t, in, signed(t, testSecret, "msg_1", testNow.Add(-time.Minute), body), body)
	if a.code != http.StatusAccepted {
		t.Fatalf("code %d, want 202: %s", a.code, a.raw)
	}
	recs := consume(t, kc, schemas.TopicBankTransactions, 1)
	r := recs[0]
	var id struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.Value, &id)
	if id.ID != wantKey("ACCTSVCR-1") || string(r.Key) != lenderIBAN+"/credit" {
		t.Errorf("id %s key %s, want identity key %s keyed by account %s/credit", id.ID, r.Key, wantKey("ACCTSVCR-1"), lenderIBAN)
	}
	if got := a.body["ids"].([]any)[0]; got != id.ID {
		t.Errorf("answer ids %v, record id %s", got, id.ID)
	}
	var txn recon.BankTransaction
	if err := json.Unmarshal(r.Value, &txn); err != nil {
		t.Fatal(err)
	}
	if !txn.Amount.Equal(decimal.RequireFromString("125.50")) || txn.Direction != recon.Credit || txn.Status != recon.Booked ||
		txn.Source != "webhook" || txn.ProducerID != "tx_evt_1" || txn.MessageID != "evt_1" || txn.ValueDate != "2024-08-01" ||
		txn.CounterpartyBIC != "BYLADEM1001" || txn.VirtualIBAN != "DE02120300000000202051" {
		t.Errorf("published %+v", txn)
	}
	if got := bus.Header(r, schemas.HeaderType); got != schemas.TypeBankTransaction {
		t.Errorf("ce_type %q", got)
	}
}

func TestWebhookRefusesUnauthenticated(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	body := fatEvent("evt_1", "ACCTSVCR-1")
	good := func() http.Header { return signed(t, testSecret, "msg_1", testNow, body) }
	altered := []byte(strings.Replace(string(body), "125.50", "925.50", 1))
	tests := []struct {
		name string
		h    http.Header
		body []byte
	}{
		{"forged signature (other secret)", signed(t, otherSecret, "msg_1", testNow, body), body},
		{"altered body", good(), altered},
		{"signature for another id", func() http.Header { h := good(); h.Set("webhook-id", "msg_2"); return h }(), body},
		{"expired timestamp", signed(t, testSecret, "msg_1", testNow.Add(-6*time.Minute), body), body},
		{"timestamp in the future", signed(t, testSecret, "msg_1", testNow.Add(6*time.Minute), body), body},
		{"timestamp not a number", func() http.Header { h := good(); h.Set("webhook-timestamp", "1e9"); return h }(), body},
		{"missing signature header", func() http.Header { h := good(); h.Del("webhook-signature"); return h }(), body},
		{"signature not base64", func() http.Header { h := good(); h.Set("webhook-signature", "v1,!!!"); return h }(), body},
		{"only v1a signature", func() http.Header {
			h := good()
			h.Set("webhook-signature", "v1a,"+base64.StdEncoding.EncodeToString(make([]byte, 64)))
			return h
		}(), body},
		{"too many signatures", func() http.Header {
			h := good()
			h.Set("webhook-signature", strings.Repeat("v1,AAAA ", 17)+h.Get("webhook-signature"))
			return h
		}(), body},
		{"wrong bearer", bearer("not-the-token-0123456789"), body},
		{"bearer of another scheme", http.Header{"Authorization": {"Basic " + testToken}}, body},
		{"no authentication", http.Header{}, body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := deliver(t, in, tt.h, tt.body)
			if a.code != http.StatusUnauthorized {
				t.Fatalf("code %d, want 401: %s", a.code, a.raw)
			}
			if a.body["error"] == "" {
				t.Errorf("no reason given: %s", a.raw)
			}
			for _, s := range []string{testToken, testSecret, strings.TrimPrefix(testSecret, "whsec_")} {
				if strings.Contains(a.raw, s) {
					t.Errorf("answer leaks a secret: %s", a.raw)
				}
			}
		})
	}
	for _, topic := range []string{schemas.TopicBankTransactions, schemas.TopicDeadLetters} {
		if n := ends(t, kc, topic); n != 0 {
			t.Errorf("%s holds %d records after refused deliveries, want 0", topic, n)
		}
	}
}

func TestWebhookReplayPublishesOnce(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	body := fatEvent("evt_1", "ACCTSVCR-1")
	// The sender retries with the same webhook-id and a fresh timestamp; an
	// attacker replays the captured request as it was.
	for i, h := range []http.Header{
		signed(t, testSecret, "msg_1", testNow.Add(-2*time.Minute), body),
		signed(t, testSecret, "msg_1", testNow, body),
		signed(t, testSecret, "msg_1", testNow.Add(-2*time.Minute), body),
	} {
		a := deliver(t, in, h, body)
		want := http.StatusOK
		if i == 0 {
			want = http.StatusAccepted
		}
		if a.code != want || (i > 0 && a.body["duplicate"] != true) {
			t.Fatalf("delivery %d: code %d, want %d: %s", i, a.code, want, a.raw)
		}
	}
	// Memo Bank style: the event id is the deduplication key.
	body2 := fatEvent("evt_2", "ACCTSVCR-2")
	for i := range 2 {
		if a := deliver(t, in, bearer(testToken), body2); a.code != []int{202, 200}[i] {
			t.Fatalf("bearer delivery %d: code %d: %s", i, a.code, a.raw)
		}
	}
	if n := ends(t, kc, schemas.TopicBankTransactions); n != 2 {
		t.Errorf("%d records published, want 2 (one per event)", n)
	}
}

// A crash after Kafka's ack and before the 200 loses the replay window; the
// sender's retry is published again, with the same identity key and event
// id, so the matcher posts once.
func TestWebhookRetryAfterCrashHasSameIdentity(t *testing.T) {
	_, kc := kafkaFor(t)
	body := fatEvent("evt_1", "ACCTSVCR-1")
	a1 := deliver(t, newIngest(t, kc, WebhookConfig{}), signed(t, testSecret, "msg_1", testNow, body), body)
	a2 := deliver(t, newIngest(t, kc, WebhookConfig{}), signed(t, testSecret, "msg_1", testNow.Add(time.Minute), body), body)
	if a1.code != 202 || a2.code != 202 {
		t.Fatalf("codes %d %d", a1.code, a2.code)
	}
	recs := consume(t, kc, schemas.TopicBankTransactions, 2)
	if string(recs[0].Key) != string(recs[1].Key) || bus.Header(recs[0], schemas.HeaderID) != bus.Header(recs[1], schemas.HeaderID) {
		t.Errorf("retry got another identity: keys %s %s, ce_id %s %s", recs[0].Key, recs[1].Key,
			bus.Header(recs[0], schemas.HeaderID), bus.Header(recs[1], schemas.HeaderID))
	}
	if fmt.Sprint(a1.body["ids"]) != fmt.Sprint(a2.body["ids"]) {
		t.Errorf("answers name ids %v and %v", a1.body["ids"], a2.body["ids"])
	}
}

func TestWebhookBadInputIsDeadLettered(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	tests := []struct{ name, body, reason string }{
		{"bad JSON", `{"id":"e1","type":`, "invalid JSON"},
		{"not an object", `[1,2]`, "one JSON object"},
		{"unknown transaction type", `{"id":"e1","type":"transaction.deleted","data":{}}`, "not handled"},
		{"transaction type about another resource", `{"id":"e1","event_type":"transaction_confirmed","resource_type":"card"}`, "resource_type"},
		{"no type", `{"id":"e1","data":{}}`, `no "type"`},
		{"amount as a number", `{"id":"e1","type":"transaction.created","data":{"id":"t","direction":"credit","amount":12.5,"currency":"EUR","status":"booked","bank_reference":"R"}}`, "decimal string"},
		{"amount with exponent", `{"id":"e1","type":"transaction.created","data":{"id":"t","direction":"credit","amount":"1e3","currency":"EUR","status":"booked","bank_reference":"R"}}`, "no sign, exponent or separators"},
		{"no status", `{"id":"e1","type":"transaction.created","data":{"id":"t","direction":"credit","amount":"1","currency":"EUR","bank_reference":"R"}}`, "status is missing"},
		{"no direction", `{"id":"e1","type":"transaction.created","data":{"id":"t","amount":"1","currency":"EUR","status":"booked"}}`, "direction"},
		{"bad currency", `{"id":"e1","type":"transaction.created","data":{"id":"t","direction":"credit","amount":"1","currency":"euro","status":"booked"}}`, "currency"},
		{"bad IBAN", `{"id":"e1","type":"transaction.created","data":{"id":"t","account_iban":"nope","direction":"credit","amount":"1","currency":"EUR","status":"booked"}}`, "account_iban"},
		{"account IBAN with wrong check digits", `{"id":"e1","type":"transaction.created","data":{"id":"t","account_iban":"DE88370400440532013000","direction":"credit","amount":"1","currency":"EUR","status":"booked","bank_reference":"R"}}`, "account_iban"},
		{"virtual IBAN one digit short", `{"id":"e1","type":"transaction.created","data":{"id":"t","virtual_iban":"DE0212030000000020205","direction":"credit","amount":"1","currency":"EUR","status":"booked","bank_reference":"R"}}`, "virtual_iban"},
		{"counterparty IBAN mistyped", `{"id":"e1","type":"transaction.created","data":{"id":"t","counterparty":{"iban":"DE02120300000000202015"},"direction":"credit","amount":"1","currency":"EUR","status":"booked","bank_reference":"R"}}`, "counterparty_iban"},
		{"thin without resource id", `{"id":"e1","type":"transaction.created"}`, "resource_id"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			a := deliver(t, in, signed(t, testSecret, "msg_bad_"+strconv.Itoa(i), testNow, body), body)
			if a.code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(a.body["error"]), tt.reason) {
				t.Fatalf("code %d, want 400 with %q: %s", a.code, tt.reason, a.raw)
			}
		})
	}
	dls := consume(t, kc, schemas.TopicDeadLetters, len(tests))
	for i, r := range dls {
		var dl recon.DeadLetter
		if err := json.Unmarshal(r.Value, &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Source != "webhook" || dl.Reason == "" || !strings.Contains(dl.Where, "webhook-id") {
			t.Errorf("dead letter %d: %+v", i, dl)
		}
		found := false
		for _, tt := range tests {
			found = found || string(dl.Raw) == tt.body
		}
		if !found {
			t.Errorf("dead letter %d keeps %q, not a delivered body", i, dl.Raw)
		}
	}
	if n := ends(t, kc, schemas.TopicBankTransactions); n != 0 {
		t.Errorf("%d transactions published from bad input", n)
	}
}

func TestWebhookOversizedAndSlow(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{MaxBodyBytes: 4096})
	big := []byte(`{"id":"e","type":"transaction.created","pad":"` + strings.Repeat("x", 5000) + `"}`)
	if a := deliver(t, in, signed(t, testSecret, "msg_big", testNow, big), big); a.code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: code %d, want 413: %s", a.code, a.raw)
	}
	// A body without Content-Length is cut at the limit too.
	mux := http.NewServeMux()
	in.Register(mux)
	req := httptest.NewRequest(http.MethodPost, "/v1/bank/webhooks", io.MultiReader(strings.NewReader(string(big))))
	req.ContentLength = -1
	for k, v := range bearer(testToken) {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized, chunked: code %d, want 413", rec.Code)
	}
	// A client slower than the server's read timeout: the read fails with
	// a timeout.
	req = httptest.NewRequest(http.MethodPost, "/v1/bank/webhooks", io.MultiReader(strings.NewReader(`{"id":`), timeoutReader{}))
	for k, v := range bearer(testToken) {
		req.Header[k] = v
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestTimeout {
		t.Errorf("slow client: code %d, want 408", rec.Code)
	}
	for _, topic := range []string{schemas.TopicBankTransactions, schemas.TopicDeadLetters} {
		if n := ends(t, kc, topic); n != 0 {
			t.Errorf("%s holds %d records, want 0", topic, n)
		}
	}
}

type timeoutReader struct{}

func (timeoutReader) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

// A real server with a read timeout answers a stalled client 408.
func TestWebhookSlowClientRealServer(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	mux := http.NewServeMux()
	in.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers and half the body, then nothing: the server's deadline fires.
	fmt.Fprintf(conn, "POST /v1/bank/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"id\":", testToken)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("code %d, want 408", resp.StatusCode)
	}
	if n := ends(t, kc, schemas.TopicBankTransactions); n != 0 {
		t.Errorf("%d records published", n)
	}
}

// fakeBank is the bank's API: GET /transactions/{id} with a bearer token.
type fakeBank struct {
	mu    sync.Mutex
	txns  map[string]string
	down  bool
	calls int
}

func (b *fakeBank) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	switch {
	case r.Header.Get("Authorization") != "Bearer "+bankToken:
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
	case b.down:
		http.Error(w, `{"error":"maintenance"}`, http.StatusServiceUnavailable)
	case r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v2/transactions/"):
		http.NotFound(w, r)
	default:
		tx, ok := b.txns[strings.TrimPrefix(r.URL.Path, "/v2/transactions/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, tx)
	}
}

func TestWebhookThinEventFetched(t *testing.T) {
	_, kc := kafkaFor(t)
	bank := &fakeBank{txns: map[string]string{
		"0b7c5c1e-1111-4f3e-9a55-3c1f1d5e2a01": `{"id":"0b7c5c1e-1111-4f3e-9a55-3c1f1d5e2a01","side":"credit","amount_cents":12550,
			"currency":"EUR","status":"confirmed","booking_date":"2024-08-01","bank_reference":"ACCTSVCR-9",
			"virtual_iban":"DE02120300000000202051","counterparty":{"name":"Max Borrower"},"unknown_new_field":{"x":1}}`,
		"tx_rejected": `{"id":"tx_rejected","side":"credit","amount_cents":1,"currency":"EUR","status":"rejected"}`,
		"tx_bad":      `{"id":"tx_bad","side":"credit","amount":7,"currency":"EUR","status":"booked"}`,
	}}
	api := httptest.NewServer(bank)
	defer api.Close()
	in := newIngest(t, kc, WebhookConfig{BankAPIBase: api.URL + "/v2/", BankAPIToken: bankToken})

	memo := []byte(`{"id":"9f0e3c2a-aaaa-4b1e-8f00-2d7c9b1a0c11","date":"2024-08-01T09:29:00Z","event_type":"transaction_confirmed",
		"resource_type":"transaction","resource_id":"0b7c5c1e-1111-4f3e-9a55-3c1f1d5e2a01"}`)
	a := deliver(t, in, bearer(testToken), memo)
	if a.code != http.StatusAccepted {
		t.Fatalf("code %d, want 202: %s", a.code, a.raw)
	}
	r := consume(t, kc, schemas.TopicBankTransactions, 1)[0]
	var txn recon.BankTransaction
	_ = json.Unmarshal(r.Value, &txn)
	if txn.ID != wantKey("ACCTSVCR-9") || !txn.Amount.Equal(decimal.RequireFromString("125.50")) ||
		txn.AccountIBAN != lenderIBAN || txn.Status != recon.Booked || txn.ProducerID != "0b7c5c1e-1111-4f3e-9a55-3c1f1d5e2a01" {
		t.Errorf("published key %s %+v", r.Key, txn)
	}

	// data.id form, and a rejected transaction: acknowledged, nothing published.
	rej := []byte(`{"id":"evt_r","type":"transaction.updated","data":{"id":"tx_rejected"}}`)
	if a := deliver(t, in, signed(t, testSecret, "msg_r", testNow, rej), rej); a.code != http.StatusOK || a.body["ignored"] != true {
		t.Errorf("rejected transaction: code %d: %s", a.code, a.raw)
	}
	// Events about other things than transactions (a bank sends dozens of
	// kinds): acknowledged, so the bank does not retry them, and ignored.
	for i, other := range []string{
		`{"id":"evt_o1","type":"account.updated","data":{"id":"acc_1","balance":"12.00"}}`,
		`{"id":"evt_o2","event_type":"beneficiary_created","resource_type":"beneficiary","resource_id":"b_1"}`,
		`{"id":"evt_o3","event_type":"card_created","resource_type":"card","resource_id":"c_1"}`,
	} {
		body := []byte(other)
		if a := deliver(t, in, signed(t, testSecret, "msg_o"+strconv.Itoa(i), testNow, body), body); a.code != http.StatusOK || a.body["ignored"] != true ||
			!strings.Contains(fmt.Sprint(a.body["reason"]), "not about a transaction") {
			t.Errorf("%s: code %d: %s", other, a.code, a.raw)
		}
	}
	// The bank API gives a float amount: refused, its answer dead-lettered.
	bad := []byte(`{"id":"evt_b","type":"transaction.created","resource_id":"tx_bad"}`)
	if a := deliver(t, in, bearer(testToken), bad); a.code != http.StatusBadRequest {
		t.Errorf("bad resource: code %d: %s", a.code, a.raw)
	}
	var dl recon.DeadLetter
	_ = json.Unmarshal(consume(t, kc, schemas.TopicDeadLetters, 1)[0].Value, &dl)
	if !strings.Contains(string(dl.Raw), `"amount":7`) || !strings.Contains(dl.Where, `resource "tx_bad"`) {
		t.Errorf("dead letter %+v", dl)
	}
	if n := ends(t, kc, schemas.TopicBankTransactions); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
}

func TestWebhookBankAPIDown(t *testing.T) {
	_, kc := kafkaFor(t)
	bank := &fakeBank{txns: map[string]string{}, down: true}
	api := httptest.NewServer(bank)
	closed := httptest.NewServer(bank)
	closed.Close()
	defer api.Close()
	tests := []struct {
		name string
		base string
		id   string
	}{
		{"bank answers 503", api.URL + "/v2", "tx_1"},
		{"bank unreachable", closed.URL + "/v2", "tx_1"},
		{"no bank API configured", "", "tx_1"},
		{"bank does not know the transaction", api.URL + "/v2", "tx_unknown"},
		{"bank with wrong token", api.URL + "/v2", "tx_1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := bankToken
			if strings.Contains(tt.name, "wrong token") {
				token = "wrong"
			}
			bank.mu.Lock()
			bank.down = i == 0
			bank.mu.Unlock()
			in := newIngest(t, kc, WebhookConfig{BankAPIBase: tt.base, BankAPIToken: token})
			body := []byte(`{"id":"evt_1","type":"transaction.created","resource_id":"` + tt.id + `"}`)
			a := deliver(t, in, bearer(testToken), body)
			if a.code != http.StatusBadGateway || a.hdr.Get("Retry-After") == "" {
				t.Fatalf("code %d, want 502 with Retry-After: %s", a.code, a.raw)
			}
			if strings.Contains(a.raw, bankToken) {
				t.Errorf("answer leaks the bank token: %s", a.raw)
			}
		})
	}
	for _, topic := range []string{schemas.TopicBankTransactions, schemas.TopicDeadLetters} {
		if n := ends(t, kc, topic); n != 0 {
			t.Errorf("%s holds %d records, want 0", topic, n)
		}
	}
}

func TestWebhookKafkaUnavailable(t *testing.T) {
	cluster, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{PublishTimeout: 500 * time.Millisecond})
	cluster.Close()
	for _, body := range [][]byte{fatEvent("evt_1", "ACCTSVCR-1"), []byte(`{"id":"e","type":"transaction.nope"}`)} {
		a := deliver(t, in, signed(t, testSecret, "msg_"+strconv.Itoa(len(body)), testNow, body), body)
		if a.code != http.StatusServiceUnavailable || a.hdr.Get("Retry-After") == "" {
			t.Errorf("code %d, want 503 with Retry-After: %s", a.code, a.raw)
		}
	}
	// Nothing was remembered: the retry is not taken for a duplicate.
	if n := in.wh.seen.len(); n != 0 {
		t.Errorf("replay window holds %d ids after failed publishes", n)
	}
}

func TestWebhookDisabled(t *testing.T) {
	in := New(nil, bus.Config{}, NewMetrics(nil))
	if a := deliver(t, in, bearer(testToken), []byte(`{}`)); a.code != http.StatusServiceUnavailable {
		t.Errorf("code %d, want 503", a.code)
	}
}

// The same money seen by webhook and by camt.054 (AcctSvcrRef = the
// webhook's bank_reference) gets one identity key.
func TestWebhookAndCamtShareIdentity(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	body := fatEvent("evt_1", "2024080100042")
	if a := deliver(t, in, signed(t, testSecret, "msg_1", testNow, body), body); a.code != 202 {
		t.Fatalf("code %d: %s", a.code, a.raw)
	}
	camt := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.10"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>NTF-20240801-1</MsgId><CreDtTm>2024-08-01T09:31:00</CreDtTm></GrpHdr>
<Ntfctn><Id>N1</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
<Ntry><Amt Ccy="EUR">125.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2024-08-01</Dt></BookgDt><AcctSvcrRef>2024080100042</AcctSvcrRef>
<NtryDtls><TxDtls><Refs><EndToEndId>E2E-evt_1</EndToEndId></Refs>
<RltdPties><Dbtr><Pty><Nm>Max Borrower</Nm></Pty></Dbtr><CdtrAcct><Id><IBAN>DE02120300000000202051</IBAN></Id></CdtrAcct></RltdPties>
</TxDtls></NtryDtls></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>`)
	if _, err := in.File(context.Background(), "camt054.xml", camt); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, kc, schemas.TopicBankTransactions, 2)
	var a0, a1 recon.BankTransaction
	_, _ = json.Unmarshal(recs[0].Value, &a0), json.Unmarshal(recs[1].Value, &a1)
	if string(recs[0].Key) != string(recs[1].Key) || a0.ID != a1.ID || a0.ID != wantKey("2024080100042") {
		t.Errorf("webhook key %s id %s, camt key %s id %s, want one partition key and both ids %s", recs[0].Key, a0.ID, recs[1].Key, a1.ID, wantKey("2024080100042"))
	}
}

func TestBankTxnMapping(t *testing.T) {
	tests := []struct {
		name, json string
		amount     string // "" when an error is wanted
		errHas     string
	}{
		{"amount string", `{"direction":"credit","amount":"10.05","currency":"EUR","status":"booked"}`, "10.05", ""},
		{"cents EUR", `{"side":"DBIT","amount_cents":1005,"currency":"EUR","status":"pending"}`, "10.05", ""},
		{"cents JPY", `{"side":"credit","amount_cents":1005,"currency":"JPY","status":"booked"}`, "1005", ""},
		{"cents KWD", `{"side":"credit","amount_cents":1005,"currency":"KWD","status":"booked"}`, "1.005", ""},
		{"float cents", `{"side":"credit","amount_cents":10.5,"currency":"EUR","status":"booked"}`, "", "integer"},
		{"negative", `{"side":"credit","amount":"-1","currency":"EUR","status":"booked"}`, "", "no sign"},
		{"six decimals", `{"side":"credit","amount":"1.000001","currency":"EUR","status":"booked"}`, "", "more than 5"},
		{"both amounts", `{"side":"credit","amount":"1","amount_cents":100,"currency":"EUR","status":"booked"}`, "", "not both"},
		{"no amount", `{"side":"credit","currency":"EUR","status":"booked"}`, "", "missing"},
		{"bad date", `{"side":"credit","amount":"1","currency":"EUR","status":"booked","booking_date":"2024-02-30"}`, "", "booking_date"},
		{"canceled", `{"side":"credit","amount":"1","currency":"EUR","status":"canceled"}`, "", "no money moved"},
		{"unknown status", `{"side":"credit","amount":"1","currency":"EUR","status":"weird"}`, "", "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bankTxn
			if err := json.Unmarshal([]byte(tt.json), &b); err != nil {
				t.Fatal(err)
			}
			txn, err := b.transaction(lenderIBAN)
			if tt.amount == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err %v, want one with %q", err, tt.errHas)
				}
				return
			}
			if err != nil || !txn.Amount.Equal(decimal.RequireFromString(tt.amount)) {
				t.Fatalf("amount %s err %v, want %s", txn.Amount, err, tt.amount)
			}
		})
	}
	var b bankTxn
	_ = json.Unmarshal([]byte(`{"side":"credit","amount":"1","currency":"EUR","status":"booked"}`), &b)
	if _, err := b.transaction(""); err == nil || errors.Is(err, errNoMoney) {
		t.Errorf("no account anywhere: err %v, want a refusal", err)
	}
}

func TestReplayWindow(t *testing.T) {
	w := newReplayWindow(time.Minute, 3)
	t0 := testNow
	w.add("a", t0)
	w.add("b", t0.Add(time.Second))
	if !w.has("a", t0.Add(59*time.Second)) || w.has("a", t0.Add(time.Minute)) {
		t.Error("ttl not honoured")
	}
	w.add("c", t0.Add(2*time.Second))
	w.add("d", t0.Add(3*time.Second)) // over the limit: "a" goes
	if w.has("a", t0.Add(3*time.Second)) || !w.has("d", t0.Add(3*time.Second)) || w.len() != 3 {
		t.Errorf("limit not honoured: len %d", w.len())
	}
	w.add("e", t0.Add(2*time.Minute)) // everything else expired
	if w.len() != 1 {
		t.Errorf("expired keys kept: len %d", w.len())
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  WebhookConfig
		ok   bool
	}{
		{"secret", WebhookConfig{Secrets: []string{testSecret}}, true},
		{"token", WebhookConfig{BearerTokens: []string{testToken}, BankAPIBase: "https://api.bank.example/v2"}, true},
		{"nothing", WebhookConfig{}, false},
		{"short token", WebhookConfig{BearerTokens: []string{"short"}}, false},
		{"bad secret", WebhookConfig{Secrets: []string{"whsec_not base64!"}}, false},
		{"short secret", WebhookConfig{Secrets: []string{"whsec_AAAA"}}, false},
		{"base with credentials", WebhookConfig{Secrets: []string{testSecret}, BankAPIBase: "https://u:p@bank/"}, false},
		{"tolerance too long", WebhookConfig{Secrets: []string{testSecret}, Tolerance: 2 * time.Hour}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "not base64!") || strings.Contains(err.Error(), "u:p")) {
			t.Errorf("%s: error shows the secret: %v", tt.name, err)
		}
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), "msg_1", "1722504600", []byte(`{"id":"e"}`), "v1,AAAA v2,x", uint8(0))
	f.Add([]byte{}, "", "", []byte{}, "", uint8(255))
	f.Fuzz(func(t *testing.T, key []byte, id, ts string, body []byte, header string, flip uint8) {
		_ = verifySignature([][]byte{key}, id, ts, body, header)
		_ = checkTimestamp(ts, testNow, time.Minute)
		sig := "v1," + base64.StdEncoding.EncodeToString(signature(key, id, ts, body))
		if err := verifySignature([][]byte{key}, id, ts, body, header+" "+sig); err != nil && len(strings.Fields(header)) < maxSignatures {
			t.Fatalf("valid signature refused: %v", err)
		}
		if len(body) == 0 {
			return
		}
		altered := append([]byte(nil), body...)
		altered[int(flip)%len(altered)] ^= 1 << (flip % 8)
		if err := verifySignature([][]byte{key}, id, ts, altered, sig); err == nil {
			t.Fatal("altered body verified")
		}
	})
}
