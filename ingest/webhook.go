// Bank webhooks: POST /v1/bank/webhooks.
//
// A delivery is authenticated one of two ways. With the Standard Webhooks
// headers (webhook-id, webhook-timestamp, webhook-signature) it must carry a
// v1 HMAC-SHA256 signature of "id.timestamp.body" under one of the
// configured secrets, and a timestamp within the tolerance either way.
// Without them it must carry "Authorization: Bearer <token>" with one of the
// configured tokens, as Memo Bank sends. Anything else is 401, before the
// body is looked at; nothing reaches Kafka.
//
// One delivery holds one event, in either shape:
//
//	fat:  {"id":"evt_1","type":"transaction.created","data":{<transaction>}}
//	thin: {"id":"evt_1","type":"transaction.created","resource_id":"tx_1"}
//	      {"id":"evt_1","event_type":"transaction_confirmed","resource_type":"transaction","resource_id":"tx_1"}
//	      {"id":"evt_1","type":"transaction.updated","data":{"id":"tx_1"}}
//
// A thin event's transaction is fetched from GET {BankAPIBase}/transactions/{id}
// with "Authorization: Bearer {BankAPIToken}". Accepted types are
// transaction.created, transaction.updated and Memo Bank's
// transaction_scheduled, transaction_authorized, transaction_confirmed;
// transaction_rejected and transaction_canceled are acknowledged and ignored
// (no money moved). So is any event about something else than a
// transaction (a type not starting with "transaction", or a resource_type
// other than "transaction": a bank sends dozens of kinds, and refusing them
// would only make it retry); an unknown transaction type is refused and
// dead-lettered, because it may move money.
//
// A transaction (the "data" of a fat event, or the bank API's answer) is a
// JSON object; unknown fields are ignored, because banks add fields without
// notice:
//
//	id                   the bank's id for the transaction (kept as producer_id)
//	account_iban         the lender's account; or "account":{"iban":...};
//	                     else WebhookConfig.AccountIBAN
//	virtual_iban         the virtual IBAN the money was sent to
//	direction            "credit" | "debit" (or "side", or CRDT/DBIT)
//	amount               a decimal STRING, "1234.50" (a JSON number is refused:
//	                     no floats on money); or
//	amount_cents         an integer of minor units (0 decimals for JPY...,
//	                     3 for BHD..., else 2)
//	currency             ISO 4217, "EUR"
//	status               "booked" | "pending" | "info"; Memo Bank's "confirmed"
//	                     is booked, "scheduled"/"authorized" pending,
//	                     "rejected"/"canceled" are ignored. Required: a
//	                     delivery is never assumed booked.
//	booking_date         "YYYY-MM-DD" or an RFC 3339 time (its date is kept)
//	value_date           likewise
//	bank_reference       the account servicer reference: the same string the
//	                     bank writes in camt <AcctSvcrRef>, so a webhook and a
//	                     statement of the same money share an identity key
//	end_to_end_id, transaction_id, mandate_id, creditor_reference,
//	remittance_info, return_reason, bank_tx_code, entry_reference, reversal
//	counterparty         {"name","iban","bic"}; or counterparty_name,
//	                     counterparty_iban, counterparty_bic
//
// Answers: 202 once the transaction is durably in Kafka; 200
// {"duplicate":true} for a webhook id (or, with a bearer token, an event id)
// already published within the replay window; 400 with the reason for bad
// input, whose raw bytes go to the dead-letter topic; 401 unauthenticated;
// 408 body too slow; 413 body too large; 502 when the bank API cannot give
// the resource; 503 with Retry-After while Kafka is unavailable. Secrets and
// tokens never appear in answers.

package ingest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ingest/iso20022"
)

// WebhookConfig configures the bank webhook receiver. At least one of
// BearerTokens and Secrets is needed.
type WebhookConfig struct {
	// BearerTokens accepted in "Authorization: Bearer ..." (Memo Bank style;
	// several for rotation).
	BearerTokens []string
	// Secrets are Standard Webhooks signing secrets, "whsec_<base64>"
	// (several for rotation).
	Secrets []string
	// Tolerance of webhook-timestamp, either way (default 5m). Webhook ids
	// are remembered for twice as long.
	Tolerance time.Duration
	// BankAPIBase is where thin events' transactions are fetched from, e.g.
	// "https://api.bank.example/v2"; empty means thin events get 502.
	BankAPIBase  string
	BankAPIToken string
	// FetchTimeout bounds one fetch from the bank API (default 10s).
	FetchTimeout time.Duration
	// MaxBodyBytes bounds a delivery and a fetched resource (default 1 MiB).
	MaxBodyBytes int64
	// AccountIBAN is the lender's account, for resources that omit it.
	AccountIBAN string
	// PublishTimeout bounds the wait for Kafka's acknowledgement (default
	// 10s) so the sender gets a 503 before its own timeout.
	PublishTimeout time.Duration
	// ReplayLimit bounds the webhook ids remembered (default 100000).
	ReplayLimit int
}

// Webhook limits.
const (
	maxWebhookIDBytes = 256
	maxSignatures     = 16
	maxWebhookBody    = MaxJSONBytes
)

func (c *WebhookConfig) defaults() {
	if c.Tolerance == 0 {
		c.Tolerance = 5 * time.Minute
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = 10 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.ReplayLimit == 0 {
		c.ReplayLimit = 100000
	}
}

// Validate checks the configuration (after defaults); its errors never
// contain a secret.
func (c WebhookConfig) Validate() error {
	c.defaults()
	switch {
	case len(c.BearerTokens) == 0 && len(c.Secrets) == 0:
		return errors.New("webhooks: no bearer token and no signing secret configured")
	case c.Tolerance < time.Second || c.Tolerance > time.Hour:
		return fmt.Errorf("webhooks: tolerance %s out of range 1s..1h", c.Tolerance)
	case c.FetchTimeout < 0 || c.FetchTimeout > 2*time.Minute:
		return fmt.Errorf("webhooks: fetch timeout %s out of range 0..2m", c.FetchTimeout)
	case c.PublishTimeout < 0 || c.PublishTimeout > 2*time.Minute:
		return fmt.Errorf("webhooks: publish timeout %s out of range 0..2m", c.PublishTimeout)
	case c.MaxBodyBytes < 1024 || c.MaxBodyBytes > maxWebhookBody:
		return fmt.Errorf("webhooks: max body %d bytes out of range 1024..%d", c.MaxBodyBytes, maxWebhookBody)
	case c.ReplayLimit < 1 || c.ReplayLimit > 10_000_000:
		return fmt.Errorf("webhooks: replay limit %d out of range 1..10000000", c.ReplayLimit)
	case c.AccountIBAN != "" && recon.ValidIBAN(c.AccountIBAN) != nil:
		return fmt.Errorf("webhooks: account IBAN is not an IBAN: %w", recon.ValidIBAN(c.AccountIBAN))
	}
	for i, t := range c.BearerTokens {
		if len(strings.TrimSpace(t)) < 16 {
			return fmt.Errorf("webhooks: bearer token #%d is shorter than 16 characters", i+1)
		}
	}
	for i, s := range c.Secrets {
		if _, err := decodeSecret(s); err != nil {
			return fmt.Errorf("webhooks: secret #%d: %w", i+1, err)
		}
	}
	if c.BankAPIBase != "" {
		u, err := url.Parse(c.BankAPIBase)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return errors.New("webhooks: bank API base must be an http(s) URL without credentials or query")
		}
	}
	return nil
}

// decodeSecret turns "whsec_<base64>" (the prefix is optional) into key
// bytes; its errors never show the secret.
func decodeSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "whsec_"))
	if err != nil {
		return nil, errors.New(`not "whsec_" followed by base64`)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("key is %d bytes, at least 16 are needed", len(key))
	}
	return key, nil
}

// webhooks is the receiver's state: decoded keys, hashed tokens, the bank
// API client and the replay window.
type webhooks struct {
	cfg    WebhookConfig
	keys   [][]byte
	tokens [][sha256.Size]byte
	client *http.Client
	seen   *replayWindow
}

// EnableWebhooks turns on POST /v1/bank/webhooks. client fetches thin
// events' resources (nil: a default client); it never follows redirects.
// Call it before serving.
func (in *Ingest) EnableWebhooks(cfg WebhookConfig, client *http.Client) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.defaults()
	wh := &webhooks{cfg: cfg, seen: newReplayWindow(2*cfg.Tolerance, cfg.ReplayLimit)}
	for _, s := range cfg.Secrets {
		k, _ := decodeSecret(s)
		wh.keys = append(wh.keys, k)
	}
	for _, t := range cfg.BearerTokens {
		wh.tokens = append(wh.tokens, sha256.Sum256([]byte(strings.TrimSpace(t))))
	}
	c := http.Client{}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	wh.client = &c
	in.wh = wh
	return nil
}

// webhookReply is an answer with its outcome for the metric.
type webhookReply struct {
	code    int
	outcome string
	body    any
}

func refuse(code int, outcome, reason string) webhookReply {
	return webhookReply{code: code, outcome: outcome, body: map[string]string{"error": reason}}
}

func (in *Ingest) handleWebhook(w http.ResponseWriter, r *http.Request) {
	rep := in.webhook(r)
	if in.m.webhooks != nil {
		in.m.webhooks.WithLabelValues(rep.outcome).Inc()
	}
	switch rep.code {
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		w.Header().Set("Retry-After", "5")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="recon"`)
	}
	in.reply(w, "webhooks", rep.code, rep.body)
}

// webhook authenticates, reads, resolves and publishes one delivery.
func (in *Ingest) webhook(r *http.Request) webhookReply {
	wh := in.wh
	if wh == nil {
		return refuse(http.StatusServiceUnavailable, "disabled", "bank webhooks are not configured on this server")
	}
	now := in.now()
	h := r.Header
	signed := h.Get("webhook-id") != "" || h.Get("webhook-timestamp") != "" || h.Get("webhook-signature") != ""
	if signed {
		if err := wh.checkSignedHeaders(h, now); err != nil {
			return refuse(http.StatusUnauthorized, "unauthorized", err.Error())
		}
	} else if err := wh.checkBearer(h.Get("Authorization")); err != nil {
		return refuse(http.StatusUnauthorized, "unauthorized", err.Error())
	}

	body, rep, ok := readWebhookBody(r, wh.cfg.MaxBodyBytes)
	if !ok {
		return rep
	}
	replayKey := ""
	if signed {
		if err := verifySignature(wh.keys, h.Get("webhook-id"), h.Get("webhook-timestamp"), body, h.Get("webhook-signature")); err != nil {
			return refuse(http.StatusUnauthorized, "unauthorized", err.Error())
		}
		replayKey = "webhook-id:" + h.Get("webhook-id")
		if wh.seen.has(replayKey, now) {
			return webhookReply{http.StatusOK, "duplicate", map[string]any{"duplicate": true, "webhook_id": h.Get("webhook-id")}}
		}
	}

	ctx := r.Context()
	where := "delivery"
	if signed {
		where = "webhook-id " + strconv.Quote(h.Get("webhook-id"))
	}
	ev, err := parseEvent(body)
	if err != nil {
		return in.refuseInput(ctx, where, err.Error(), body)
	}
	where += " event " + strconv.Quote(trunc(ev.ID))
	if !signed {
		if ev.ID == "" {
			return in.refuseInput(ctx, where, `event has no "id" (needed to recognise a redelivery)`, body)
		}
		replayKey = "event:" + ev.ID
		if wh.seen.has(replayKey, now) {
			return webhookReply{http.StatusOK, "duplicate", map[string]any{"duplicate": true, "event_id": ev.ID}}
		}
	}
	if ev.ignore {
		return webhookReply{http.StatusOK, "ignored", map[string]any{"ignored": true, "event_id": ev.ID, "reason": ev.why}}
	}

	raw := body
	if ev.thin {
		res, err := wh.fetch(ctx, ev.ResourceID)
		if err != nil {
			return refuse(http.StatusBadGateway, "fetch_failed", fmt.Sprintf("%s: %v; retry later", where, err))
		}
		raw, where, ev.Data = res, where+" resource "+strconv.Quote(ev.ResourceID), bankTxn{}
		if err := json.Unmarshal(res, &ev.Data); err != nil {
			return in.refuseInput(ctx, where, "bank API answered invalid JSON: "+err.Error(), raw)
		}
		if ev.Data.ID == "" {
			ev.Data.ID = ev.ResourceID
		} else if ev.Data.ID != ev.ResourceID {
			return refuse(http.StatusBadGateway, "fetch_failed", fmt.Sprintf("%s: bank API answered transaction %q instead", where, ev.Data.ID))
		}
	}
	txn, err := ev.Data.transaction(wh.cfg.AccountIBAN)
	if errors.Is(err, errNoMoney) {
		wh.seen.add(replayKey, now)
		return webhookReply{http.StatusOK, "ignored", map[string]any{"ignored": true, "event_id": ev.ID, "reason": err.Error()}}
	}
	if err != nil {
		return in.refuseInput(ctx, where, err.Error(), raw)
	}
	txn.MessageID = ev.ID

	pctx, cancel := context.WithTimeout(ctx, wh.cfg.PublishTimeout)
	defer cancel()
	ids, err := in.Transactions(pctx, "webhook", []recon.BankTransaction{txn})
	var ie *InputError
	switch {
	case errors.As(err, &ie):
		return in.refuseInput(ctx, where, ie.Reason, raw)
	case err != nil:
		return refuse(http.StatusServiceUnavailable, "unavailable", "transaction not stored, retry: "+err.Error())
	}
	wh.seen.add(replayKey, now)
	return webhookReply{http.StatusAccepted, "accepted", map[string]any{"accepted": len(ids), "ids": ids, "event_id": ev.ID}}
}

// refuseInput dead-letters raw and answers 400; if the dead letter cannot be
// stored the sender gets 503 and will retry, so the bytes are not lost.
func (in *Ingest) refuseInput(ctx context.Context, where, reason string, raw []byte) webhookReply {
	ctx, cancel := context.WithTimeout(ctx, in.wh.cfg.PublishTimeout)
	defer cancel()
	if err := in.DeadLetter(ctx, "webhook", where, reason, raw); err != nil {
		return refuse(http.StatusServiceUnavailable, "unavailable", "refused input not stored, retry: "+err.Error())
	}
	return refuse(http.StatusBadRequest, "invalid", where+": "+reason)
}

// readWebhookBody reads at most limit bytes of the body: 413 beyond, 408
// when the client is too slow for the server's read timeout.
func readWebhookBody(r *http.Request, limit int64) ([]byte, webhookReply, bool) {
	tooLarge := refuse(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than the %d-byte limit", limit))
	if r.ContentLength > limit {
		return nil, tooLarge, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	var ne net.Error
	switch {
	case err == nil && int64(len(body)) > limit:
		return nil, tooLarge, false
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return nil, refuse(http.StatusRequestTimeout, "timeout", "body not received in time"), false
	case err != nil:
		return nil, refuse(http.StatusBadRequest, "invalid", "reading body: "+err.Error()), false
	}
	return body, webhookReply{}, true
}

// checkBearer compares the token with every configured one in constant time.
func (wh *webhooks) checkBearer(header string) error {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(wh.tokens) == 0 {
		return errors.New("missing Standard Webhooks signature headers or Authorization: Bearer token")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, t := range wh.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match != 1 {
		return errors.New("bearer token not recognised")
	}
	return nil
}

var webhookIDRE = regexp.MustCompile(`^[\x21-\x7e]+$`)

// checkSignedHeaders checks what can be checked before reading the body:
// the three headers are there, the id is sane and the timestamp is fresh.
func (wh *webhooks) checkSignedHeaders(h http.Header, now time.Time) error {
	if len(wh.keys) == 0 {
		return errors.New("Standard Webhooks signatures are not configured on this server")
	}
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if h.Get(name) == "" {
			return fmt.Errorf("missing %s header", name)
		}
	}
	if id := h.Get("webhook-id"); len(id) > maxWebhookIDBytes || !webhookIDRE.MatchString(id) {
		return fmt.Errorf("webhook-id must be 1 to %d printable ASCII characters", maxWebhookIDBytes)
	}
	return checkTimestamp(h.Get("webhook-timestamp"), now, wh.cfg.Tolerance)
}

// checkTimestamp accepts Unix seconds within tol of now, either way.
func checkTimestamp(ts string, now time.Time, tol time.Duration) error {
	if len(ts) == 0 || len(ts) > 12 || strings.Trim(ts, "0123456789") != "" {
		return errors.New("webhook-timestamp is not Unix seconds")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not Unix seconds")
	}
	d := now.Sub(time.Unix(sec, 0))
	switch {
	case d > tol:
		return fmt.Errorf("webhook-timestamp is %s old, the tolerance is %s", d.Truncate(time.Second), tol)
	case d < -tol:
		return fmt.Errorf("webhook-timestamp is %s in the future, the tolerance is %s", (-d).Truncate(time.Second), tol)
	}
	return nil
}

// verifySignature checks a Standard Webhooks signature header: up to
// maxSignatures space-separated "v1,<base64 HMAC-SHA256(key, id.ts.body)>";
// one match under any key is enough. Other versions are skipped.
func verifySignature(keys [][]byte, id, ts string, body []byte, header string) error {
	sigs := strings.Fields(header)
	if len(sigs) == 0 {
		return errors.New("webhook-signature is empty")
	}
	if len(sigs) > maxSignatures {
		return fmt.Errorf("webhook-signature holds %d signatures, the limit is %d", len(sigs), maxSignatures)
	}
	macs := make([][]byte, len(keys))
	for i, k := range keys {
		macs[i] = signature(k, id, ts, body)
	}
	v1 := false
	for _, s := range sigs {
		ver, b64, ok := strings.Cut(s, ",")
		if !ok || ver != "v1" {
			continue
		}
		v1 = true
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		for _, m := range macs {
			if hmac.Equal(got, m) {
				return nil
			}
		}
	}
	if !v1 {
		return errors.New(`webhook-signature has no "v1," signature`)
	}
	return errors.New("webhook-signature does not match the body")
}

func signature(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignWebhook returns the Standard Webhooks headers for body, signed with
// secret ("whsec_<base64>"): for tests, demos and senders of test events.
func SignWebhook(secret, id string, at time.Time, body []byte) (http.Header, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(signature(key, id, ts, body)))
	return h, nil
}

// event is one delivery's envelope.
type event struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	EventType    string          `json:"event_type"`
	ResourceType string          `json:"resource_type"`
	ResourceID   string          `json:"resource_id"`
	RawData      json.RawMessage `json:"data"`
	Data         bankTxn         `json:"-"`
	thin, ignore bool
	why          string // why an ignored event is
}

var (
	eventTypes = map[string]bool{ // type → moves money
		"transaction.created": true, "transaction.updated": true,
		"transaction_scheduled": true, "transaction_authorized": true, "transaction_confirmed": true,
		"transaction_rejected": false, "transaction_canceled": false,
	}
	resourceIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
)

// parseEvent reads one event and says whether it is thin.
func parseEvent(body []byte) (event, error) {
	var ev event
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return ev, errors.New("a delivery is one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ev); err != nil {
		return ev, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return ev, errors.New("invalid JSON: data after the event object")
	}
	if len(ev.ID) > maxWebhookIDBytes {
		return ev, fmt.Errorf("event id longer than %d bytes", maxWebhookIDBytes)
	}
	if ev.Type == "" {
		ev.Type = ev.EventType
	}
	moves, known := eventTypes[ev.Type]
	aboutTransactions := strings.HasPrefix(ev.Type, "transaction")
	switch {
	case ev.Type == "":
		return ev, errors.New(`event has no "type"`)
	case !aboutTransactions && ev.ResourceType != "transaction":
		ev.ignore, ev.why = true, "event type "+trunc(ev.Type)+" is not about a transaction"
		return ev, nil
	case !known:
		return ev, fmt.Errorf("event type %q is not handled (want transaction.created, transaction.updated or transaction_*)", trunc(ev.Type))
	case ev.ResourceType != "" && ev.ResourceType != "transaction":
		return ev, fmt.Errorf("resource_type %q is not transaction", trunc(ev.ResourceType))
	case !moves:
		ev.ignore, ev.why = true, "event type "+ev.Type+" moves no money"
		return ev, nil
	}
	if d := bytes.TrimSpace(ev.RawData); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if err := json.Unmarshal(d, &ev.Data); err != nil {
			return ev, fmt.Errorf("data: %v", err)
		}
		if len(ev.Data.Amount) == 0 && len(ev.Data.AmountCents) == 0 {
			ev.thin, ev.ResourceID = true, cmp(ev.ResourceID, ev.Data.ID)
		}
	} else {
		ev.thin = true
	}
	if ev.thin && !resourceIDRE.MatchString(ev.ResourceID) {
		return ev, fmt.Errorf("thin event: resource_id %q must be 1-128 letters, digits, '.', '_', ':' or '-'", trunc(ev.ResourceID))
	}
	return ev, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// fetch GETs a thin event's transaction from the bank API.
func (wh *webhooks) fetch(ctx context.Context, id string) ([]byte, error) {
	if wh.cfg.BankAPIBase == "" {
		return nil, errors.New("no bank API configured to fetch thin events from")
	}
	ctx, cancel := context.WithTimeout(ctx, wh.cfg.FetchTimeout)
	defer cancel()
	u := strings.TrimRight(wh.cfg.BankAPIBase, "/") + "/transactions/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bank API request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	if wh.cfg.BankAPIToken != "" {
		req.Header.Set("Authorization", "Bearer "+wh.cfg.BankAPIToken)
	}
	resp, err := wh.client.Do(req)
	if err != nil {
		return nil, err // a *url.Error: method, URL and cause
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: bank API answered %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, wh.cfg.MaxBodyBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("GET %s: reading answer: %v", u, err)
	case int64(len(b)) > wh.cfg.MaxBodyBytes:
		return nil, fmt.Errorf("GET %s: answer larger than the %d-byte limit", u, wh.cfg.MaxBodyBytes)
	}
	return b, nil
}

// bankTxn is a transaction as a bank (or a fat event) gives it.
type bankTxn struct {
	ID          string `json:"id"`
	AccountIBAN string `json:"account_iban"`
	Account     *struct {
		IBAN string `json:"iban"`
	} `json:"account"`
	VirtualIBAN       string          `json:"virtual_iban"`
	Direction         string          `json:"direction"`
	Side              string          `json:"side"`
	Amount            json.RawMessage `json:"amount"`
	AmountCents       json.RawMessage `json:"amount_cents"`
	Currency          string          `json:"currency"`
	Status            string          `json:"status"`
	BookingDate       string          `json:"booking_date"`
	ValueDate         string          `json:"value_date"`
	EndToEndID        string          `json:"end_to_end_id"`
	TransactionID     string          `json:"transaction_id"`
	MandateID         string          `json:"mandate_id"`
	CreditorReference string          `json:"creditor_reference"`
	RemittanceInfo    string          `json:"remittance_info"`
	BankReference     string          `json:"bank_reference"`
	EntryReference    string          `json:"entry_reference"`
	BankTxCode        string          `json:"bank_tx_code"`
	ReturnReason      string          `json:"return_reason"`
	Reversal          bool            `json:"reversal"`
	Counterparty      *struct {
		Name string `json:"name"`
		IBAN string `json:"iban"`
		BIC  string `json:"bic"`
	} `json:"counterparty"`
	CounterpartyName string `json:"counterparty_name"`
	CounterpartyIBAN string `json:"counterparty_iban"`
	CounterpartyBIC  string `json:"counterparty_bic"`
}

// errNoMoney marks a transaction the bank rejected or canceled.
var errNoMoney = errors.New("the bank rejected or canceled this transaction: no money moved")

var (
	centsRE = regexp.MustCompile(`^[0-9]{1,18}$`)
	// minorUnits lists the ISO 4217 currencies without two decimals.
	minorUnits = map[string]int32{
		"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
		"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
		"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	}
)

// transaction maps the bank's fields onto recon's; ValidateTransaction (in
// Ingest.Transactions) checks the rest.
func (b bankTxn) transaction(account string) (recon.BankTransaction, error) {
	t := recon.BankTransaction{
		ID: b.ID, AccountIBAN: b.AccountIBAN, VirtualIBAN: b.VirtualIBAN, Currency: b.Currency,
		EndToEndID: b.EndToEndID, TransactionID: b.TransactionID, MandateID: b.MandateID,
		CreditorReference: b.CreditorReference, RemittanceInfo: b.RemittanceInfo, BankReference: b.BankReference,
		EntryReference: b.EntryReference, BankTxCode: b.BankTxCode, ReturnReason: b.ReturnReason, Reversal: b.Reversal,
		CounterpartyName: b.CounterpartyName, CounterpartyIBAN: b.CounterpartyIBAN, CounterpartyBIC: b.CounterpartyBIC,
	}
	if t.AccountIBAN == "" && b.Account != nil {
		t.AccountIBAN = b.Account.IBAN
	}
	if t.AccountIBAN == "" {
		t.AccountIBAN = account
	}
	if t.AccountIBAN == "" {
		return t, errors.New("no account_iban (nor account.iban) and no default account configured")
	}
	if c := b.Counterparty; c != nil {
		t.CounterpartyName, t.CounterpartyIBAN, t.CounterpartyBIC = cmp(t.CounterpartyName, c.Name), cmp(t.CounterpartyIBAN, c.IBAN), cmp(t.CounterpartyBIC, c.BIC)
	}
	switch d := strings.ToLower(cmp(b.Direction, b.Side)); d {
	case "credit", "crdt":
		t.Direction = recon.Credit
	case "debit", "dbit":
		t.Direction = recon.Debit
	default:
		return t, fmt.Errorf("direction %q must be credit or debit", trunc(d))
	}
	switch s := strings.ToLower(b.Status); s {
	case "booked", "confirmed":
		t.Status = recon.Booked
	case "pending", "scheduled", "authorized":
		t.Status = recon.Pending
	case "info":
		t.Status = recon.Info
	case "rejected", "canceled", "cancelled":
		return t, errNoMoney
	case "":
		return t, errors.New("status is missing (booked or pending)")
	default:
		return t, fmt.Errorf("status %q must be booked or pending", trunc(s))
	}
	var err error
	if t.Amount, err = b.amount(); err != nil {
		return t, err
	}
	if t.BookingDate, err = date("booking_date", b.BookingDate); err != nil {
		return t, err
	}
	if t.ValueDate, err = date("value_date", b.ValueDate); err != nil {
		return t, err
	}
	return t, nil
}

// amount reads "amount" (a decimal string) or "amount_cents" (an integer of
// minor units), never a float.
func (b bankTxn) amount() (decimal.Decimal, error) {
	a, c := bytes.TrimSpace(b.Amount), bytes.TrimSpace(b.AmountCents)
	switch {
	case len(a) > 0 && len(c) > 0:
		return decimal.Zero, errors.New("give amount or amount_cents, not both")
	case len(a) > 0:
		return amountJSON(a)
	case len(c) > 0:
		if !centsRE.Match(c) {
			return decimal.Zero, fmt.Errorf("amount_cents must be a non-negative integer of at most 18 digits, got %s", trunc(string(c)))
		}
		d, err := iso20022.ParseAmount(string(c), maxDigits)
		exp, ok := minorUnits[b.Currency]
		if !ok {
			exp = 2
		}
		return d.Shift(-exp), err
	}
	return decimal.Zero, errors.New("amount is missing")
}

func date(field, s string) (recon.Date, error) {
	if s == "" {
		return "", nil
	}
	if len(s) > 10 {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return "", fmt.Errorf("%s %q is neither YYYY-MM-DD nor RFC 3339", field, trunc(s))
		}
		s = s[:10]
	}
	if d := recon.Date(s); d.Valid() {
		return d, nil
	}
	return "", fmt.Errorf("%s %q is not YYYY-MM-DD", field, trunc(s))
}

// replayWindow remembers keys for ttl, at most limit of them (the oldest go
// first), so a redelivered webhook is answered without publishing again.
type replayWindow struct {
	mu    sync.Mutex
	ttl   time.Duration
	limit int
	at    map[string]time.Time
	queue []replayEntry // insertion order; queue[head:] is live
	head  int
}

type replayEntry struct {
	key string
	at  time.Time
}

func newReplayWindow(ttl time.Duration, limit int) *replayWindow {
	return &replayWindow{ttl: ttl, limit: limit, at: map[string]time.Time{}}
}

func (c *replayWindow) has(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.at[key]
	return ok && now.Sub(at) < c.ttl
}

func (c *replayWindow) add(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.queue) {
		e := c.queue[c.head]
		if len(c.at) < c.limit && now.Sub(e.at) < c.ttl {
			break
		}
		if at, ok := c.at[e.key]; ok && at.Equal(e.at) {
			delete(c.at, e.key)
		}
		c.queue[c.head] = replayEntry{}
		c.head++
	}
	if c.head > len(c.queue)/2 {
		c.queue = append(c.queue[:0], c.queue[c.head:]...)
		c.head = 0
	}
	c.at[key] = now
	c.queue = append(c.queue, replayEntry{key, now})
}

func (c *replayWindow) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}
