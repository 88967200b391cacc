package chaos

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/schemas"
)

// sign is Standard Webhooks v1, written here from the spec.
func sign(secret, id string, ts int64, body []byte) http.Header {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	h.Set("Content-Type", "application/json")
	return h
}

func send(base, path string, h http.Header, body []byte) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func webhookEvent(id, acct, ref, vIBAN, amount string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"type":"transaction.created","data":{"id":"tx_%s","account":{"iban":%q},"virtual_iban":%q,"side":"credit","amount":%q,"currency":"EUR","status":"booked","booking_date":"2026-11-27","bank_reference":%q}}`,
		id, id, acct, vIBAN, amount, ref))
}

// countKeys counts committed records of the bank-transactions topic per key.
func (e *Env) countKeys(keys map[string]bool, marker string) (map[string]int, int) {
	got, marked := map[string]int{}, 0
	_ = e.Checker().Replay(e.ctx, schemas.TopicBankTransactions, func(r *kgo.Record) {
		// records are keyed by account (recon.PartitionKey): the identity is the value's id
		var t struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(r.Value, &t) == nil && keys[t.ID] {
			got[t.ID]++
		}
		if marker != "" && bytes.Contains(r.Value, []byte(marker)) {
			marked++
		}
	})
	return got, marked
}

func webhooks(e *Env) Row {
	w := e.NewRun(20)
	if err := Publish(e.ingestBase, &Workload{Loans: w.Loans}, time.Minute); err != nil {
		return failRow(err)
	}
	now := time.Now().Unix()
	base := e.ingestBase()
	var bad []string
	expect := func(what string, want func(int) bool, code int, body string) {
		if !want(code) {
			bad = append(bad, fmt.Sprintf("%s: HTTP %d %s", what, code, body))
		}
	}
	is4xx := func(c int) bool { return c/100 == 4 }
	codes := map[string]int{}
	// every distinct transaction once by a valid signed webhook, then replayed
	for i, t := range w.Distinct {
		id := fmt.Sprintf("wh-%s-%d", w.Run, i)
		body := webhookEvent(id, w.Acct, t.BankReference, t.VirtualIBAN, t.Amount.StringFixed(2))
		c, b := send(base, "/v1/bank/webhooks", sign(webhookSecret, id, now, body), body)
		expect("valid "+id, func(c int) bool { return c/100 == 2 }, c, b)
		c, b = send(base, "/v1/bank/webhooks", sign(webhookSecret, id, now+1, body), body)
		codes["replay"] = c
		expect("replay "+id, func(c int) bool { return c/100 == 2 }, c, b)
	}
	forgedRef := "FORGED-" + w.Run
	fbody := webhookEvent("f-"+w.Run, w.Acct, forgedRef, w.Loans[0].VirtualIBAN, "999.99")
	c, b := send(base, "/v1/bank/webhooks", sign("whsec_"+base64.StdEncoding.EncodeToString([]byte("another-secret-another-secret")), "f-"+w.Run, now, fbody), fbody)
	codes["forged"] = c
	expect("forged", is4xx, c, b)
	h := sign(webhookSecret, "a-"+w.Run, now, fbody)
	altered := bytes.Replace(fbody, []byte("999.99"), []byte("9999.99"), 1)
	c, b = send(base, "/v1/bank/webhooks", h, altered)
	codes["altered"] = c
	expect("altered", is4xx, c, b)
	c, b = send(base, "/v1/bank/webhooks", sign(webhookSecret, "o-"+w.Run, now-3600, fbody), fbody)
	codes["stale"] = c
	expect("stale timestamp", is4xx, c, b)
	big := append(append([]byte(`{"id":"big","type":"transaction.created","data":{"remittance_info":"`), bytes.Repeat([]byte("A"), 8<<20)...), []byte(forgedRef+`"}}`)...)
	c, b = send(base, "/v1/bank/webhooks", sign(webhookSecret, "big-"+w.Run, now, big), big)
	codes["oversized"] = c
	expect("oversized", is4xx, c, b)
	c, b = send(base, "/v1/bank/webhooks", http.Header{"Content-Type": {"application/json"}}, fbody)
	codes["unsigned"] = c
	expect("unsigned", is4xx, c, b)
	// Kafka: one record per valid identity, nothing of the refused ones
	keys := map[string]bool{}
	for _, t := range w.Distinct {
		keys[recon.IdentityKey(t)] = true
	}
	got, forged := e.countKeys(keys, forgedRef)
	for k := range keys {
		if got[k] != 1 {
			bad = append(bad, fmt.Sprintf("identity %s: %d records in Kafka, want 1", k, got[k]))
		}
	}
	if forged > 0 {
		bad = append(bad, fmt.Sprintf("%d records of refused webhooks reached Kafka", forged))
	}
	w.Sightings = nil
	r, _ := e.verify(w, "", 0, time.Now())
	r.Violations = append(bad, r.Violations...)
	return rowOf(r, fmt.Sprintf("answers %v", codes), "", 0, 2*len(w.Distinct)+5)
}

func ingestCrash(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 4)
	if err := Publish(e.ingestBase, &Workload{Loans: w.Loans}, time.Minute); err != nil {
		return failRow(err)
	}
	// rounds of single-transaction requests from 8 senders, ingest SIGKILLed
	// mid-stream, until a request was acked by Kafka and never answered
	pending := append([]recon.BankTransaction(nil), w.Distinct...)
	rng := rand.New(rand.NewPCG(e.Seed, 13))
	rounds, ackedUnanswered, unansweredTotal := 0, 0, 0
	var faultEnd time.Time
	for rounds < 8 && ackedUnanswered == 0 && len(pending) > 0 {
		rounds++
		var mu sync.Mutex
		var unanswered []recon.BankTransaction
		next := 0
		var wg sync.WaitGroup
		base := e.ingestBase()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					if next >= len(pending) {
						mu.Unlock()
						return
					}
					t := pending[next]
					next++
					mu.Unlock()
					body, _ := json.Marshal(t)
					resp, err := httpClient.Post(base+"/v1/bank/transactions", "application/json", bytes.NewReader(body))
					if err == nil {
						resp.Body.Close()
					}
					if err != nil || resp.StatusCode/100 != 2 {
						mu.Lock()
						unanswered = append(unanswered, t)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		e.Ingest.Signal(syscall.SIGKILL)
		wg.Wait()
		// which unanswered transactions are already in Kafka: acked, never answered
		keys := map[string]bool{}
		for _, t := range unanswered {
			keys[recon.IdentityKey(t)] = true
		}
		inKafka, _ := e.countKeys(keys, "")
		ackedUnanswered += len(inKafka)
		unansweredTotal += len(unanswered)
		if err := e.StartIngest(); err != nil {
			return failRow(err)
		}
		faultEnd = time.Now()
		pending = unanswered // the senders retry what got no answer
	}
	for len(pending) > 0 { // the rest, retried in batches
		n := min(250, len(pending))
		body, _ := json.Marshal(pending[:n])
		pending = pending[n:]
		if err := Post(e.ingestBase, "/v1/bank/transactions", "application/json", body, time.Minute); err != nil {
			return failRow(err)
		}
	}
	r, rec := e.verify(w, "", 0, faultEnd)
	return rowOf(r, fmt.Sprintf("ingest SIGKILLed %d times mid-stream; %d requests unanswered, %d of them already in Kafka (acked, not answered); all retried",
		rounds, unansweredTotal, ackedUnanswered), unless(ackedUnanswered > 0, fmt.Sprintf("in %d rounds of kills no request was acked by Kafka and left unanswered", rounds)), rec, len(w.Distinct)+unansweredTotal)
}

func xmlHazards(e *Env) Row {
	run := e.NewRun(1).Run
	marker := "XH-" + run
	entry := func(amount string) string {
		return fmt.Sprintf(`<Ntry><Amt Ccy="EUR">%s</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>%s</AcctSvcrRef></Ntry>`, amount, marker)
	}
	doc := func(body string) string {
		return `<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>` + marker + `</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr><Stmt><Id>` + marker + `</Id><Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>` + body + `</Stmt></BkToCstmrStmt></Document>`
	}
	hazards := []struct{ name, body string }{
		{"doctype+entity", `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + strings.TrimPrefix(doc(entry("&x;")), `<?xml version="1.0" encoding="UTF-8"?>`)},
		{"deep nesting 10^6", doc(strings.Repeat("<a>", 1_000_000) + strings.Repeat("</a>", 1_000_000))},
		{"huge text node", doc(`<AddtlNtryInf>` + strings.Repeat("x", 64<<20) + `</AddtlNtryInf>` + entry("1.00"))},
		{"bad UTF-8", doc(entry("1.00") + "<AddtlNtryInf>\xff\xfe</AddtlNtryInf>")},
		{"two roots", doc(entry("1.00")) + doc(entry("2.00"))},
		{"trailing bytes", doc(entry("1.00")) + "garbage"},
		{"duplicated amount", doc(strings.Replace(entry("1.00"), `<CdtDbtInd>`, `<Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>`, 1))},
		{"6-decimal amount", doc(entry("1.000001"))},
		{"exponent amount", doc(entry("1e3"))},
	}
	var bad []string
	var ev []string
	for _, h := range hazards {
		c, b := send(e.ingestBase(), "/v1/bank/files?name=hazard.xml", http.Header{"Content-Type": {"application/xml"}}, []byte(h.body))
		ev = append(ev, fmt.Sprintf("%s %d", h.name, c))
		if c/100 != 4 {
			bad = append(bad, fmt.Sprintf("%s: HTTP %d %s", h.name, c, trunc(b, 200)))
		}
	}
	if e.Ingest.Exited() {
		bad = append(bad, "ingest died")
	} else if err := e.Ingest.Healthy(10 * time.Second); err != nil {
		bad = append(bad, err.Error())
	}
	rss := e.Ingest.RSSPeakKB()
	if rss > 1<<20 {
		bad = append(bad, fmt.Sprintf("ingest peak RSS %d MiB", rss>>10))
	}
	_, posted := e.countKeys(nil, marker)
	if posted > 0 {
		bad = append(bad, fmt.Sprintf("%d records of hazard files reached Kafka", posted))
	}
	return Row{Evidence: strings.Join(ev, ", ") + fmt.Sprintf("; ingest peak RSS %d MiB", rss>>10), Result: resultOf(bad, ""), Detail: bad, Events: len(hazards)}
}

// resultOf is a row's result; noFault as in rowOf.
func resultOf(bad []string, noFault string) string {
	switch {
	case len(bad) > 0:
		return "FAIL: safety violated"
	case noFault != "":
		return "NO-FAULT: " + noFault
	}
	return "PASS"
}

func statements(e *Env) Row {
	w := e.NewRun(30)
	if err := Publish(e.ingestBase, &Workload{Loans: w.Loans}, time.Minute); err != nil {
		return failRow(err)
	}
	ce := func(ts []recon.BankTransaction, status string) []CamtEntry {
		var out []CamtEntry
		for _, t := range ts {
			out = append(out, CamtEntry{Ref: t.BankReference, Amount: t.Amount.StringFixed(2), VIBAN: t.VirtualIBAN, Status: status, E2E: t.EndToEndID})
		}
		return out
	}
	// the first credit to a loan that stays underpaid gets reversed
	var rev recon.BankTransaction
	for i, t := range w.Distinct {
		if loan := w.loanOf(t.VirtualIBAN); loan != "" && w.Credited[loan].LessThan(w.Owed[loan]) {
			w.Distinct[i].EndToEndID = "E2E-REV-" + w.Run
			rev = recon.BankTransaction{ID: "rev-" + w.Run, AccountIBAN: w.Acct, Direction: recon.Debit, Reversal: true,
				Amount: t.Amount, Currency: "EUR", BookingDate: "2026-11-27", VirtualIBAN: t.VirtualIBAN,
				EndToEndID: "E2E-REV-" + w.Run, BankReference: "REV-" + w.Run}
			w.Credited[loan] = w.Credited[loan].Sub(t.Amount)
			w.BankNet = w.BankNet.Sub(t.Amount)
			break
		}
	}
	d := w.Distinct
	files := []struct {
		name   string
		report bool
		e      []CamtEntry
	}{
		{"053 A", false, ce(d[:15], "")},
		{"053 A again", false, ce(d[:15], "")},
		{"052 pending", true, ce(d[15:], "PDNG")},
		{"052 intraday overlapping", true, ce(d[10:20], "")},
		{"053 B overlapping, pending now booked", false, ce(d[10:], "")},
	}
	for i, f := range files {
		doc := Camt(fmt.Sprintf("%s-st%d", w.Run, i), w.Acct, f.report, f.e)
		if err := Post(e.ingestBase, "/v1/bank/files?name=st.xml", "application/xml", []byte(doc), time.Minute); err != nil {
			return failRow(fmt.Errorf("%s: %w", f.name, err))
		}
	}
	reversed := rev.ID != ""
	if reversed {
		body, _ := json.Marshal(rev)
		if err := Post(e.ingestBase, "/v1/bank/transactions", "application/json", body, time.Minute); err != nil {
			return failRow(err)
		}
		w.Distinct = append(w.Distinct, rev)
	}
	r, _ := e.verify(w, "", 0, time.Now())
	ids, notBooked := w.IDs(), 0
	_ = e.Checker().Replay(e.ctx, schemas.TopicMatches, func(rec *kgo.Record) {
		var dd jDecision
		if ids[string(rec.Key)] && json.Unmarshal(rec.Value, &dd) == nil && dd.Outcome == "not_booked" {
			notBooked++
		}
	})
	return rowOf(r, fmt.Sprintf("%d files (same 053 twice, 052 pending, 052/053 overlapping) of %d distinct entries; %d pending sightings decided not_booked; reversal of one credit sent: %v",
		len(files), len(d), notBooked, reversed), unless(notBooked > 0 && reversed, "no pending sighting was decided not_booked, or no credit could be reversed"), 0, 76)
}

func poison(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 10)
	marker := "POISON-" + w.Run
	cl, err := e.rawProducer()
	if err != nil {
		return failRow(err)
	}
	defer cl.Close()
	n := 20
	for i := range n {
		rec := &kgo.Record{Topic: schemas.TopicBankTransactions, Key: []byte(fmt.Sprintf("bt_poison%s%d", w.Run, i)),
			Value: []byte(fmt.Sprintf(`{"id": "%s-%d", "amount": {not json`, marker, i)),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderType, Value: []byte(schemas.TypeBankTransaction)},
				{Key: schemas.HeaderSpecVersion, Value: []byte("1.0")}, {Key: schemas.HeaderID, Value: []byte(fmt.Sprintf("%s-%d", marker, i))},
				{Key: schemas.HeaderSource, Value: []byte("chaos")}, {Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)}}}
		ctx, cancel := syncCtx(e)
		err := cl.ProduceSync(ctx, rec).FirstErr()
		cancel()
		if err != nil {
			return failRow(err)
		}
	}
	start := time.Now()
	if err := Publish(e.ingestBase, w, time.Minute); err != nil { // mixed in: the workload after the poison must still flow
		return failRow(err)
	}
	r, _ := e.verify(w, marker, n, start)
	return rowOf(r, fmt.Sprintf("%d unparseable records with valid headers produced to %s before %d sightings", n, schemas.TopicBankTransactions, len(w.Sightings)), unless(r.DeadLetters >= n, fmt.Sprintf("%d of the %d poison records dead-lettered", r.DeadLetters, n)), 0, n+len(w.Sightings))
}

func tamper(e *Env) Row {
	e.Matcher.Stop() // nothing writes the journal while it is tampered
	c := e.Checker()
	var last *kgo.Record
	_ = c.Replay(e.ctx, schemas.TopicLedgerEntries, func(r *kgo.Record) {
		if r.Partition == 0 {
			last = r
		}
	})
	if last == nil {
		return failRow(fmt.Errorf("journal partition 0 is empty"))
	}
	var v map[string]any
	if err := json.Unmarshal(last.Value, &v); err != nil {
		return failRow(err)
	}
	v["note"] = "tampered by chaos"
	ps, _ := v["postings"].([]any)
	for _, p := range ps {
		if m, ok := p.(map[string]any); ok {
			m["amount"] = "0.01"
		}
	}
	val, _ := json.Marshal(v)
	cl, err := e.rawProducer()
	if err != nil {
		return failRow(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: last.Topic, Partition: 0, Key: last.Key, Value: val, Headers: last.Headers}
	ctx, cancel := syncCtx(e)
	defer cancel()
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return failRow(err)
	}
	out, err := exec.Command(e.Bin, "ledger", "verify", "--brokers", e.Svc.Brokers()).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	var bad []string
	line := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "BROKEN") {
			line = strings.TrimSpace(l)
		}
	}
	if code == 0 || line == "" {
		bad = append(bad, fmt.Sprintf("recon ledger verify exit %d on a tampered journal: %s", code, trunc(string(out), 300)))
	} else if !strings.Contains(line, strconv.FormatInt(rec.Offset, 10)) {
		bad = append(bad, fmt.Sprintf("verify does not name offset %d: %s", rec.Offset, line))
	}
	return Row{Evidence: fmt.Sprintf("altered copy of %s written at 0@%d; verify exit %d: %s", last.Key, rec.Offset, code, trunc(line, 160)),
		Result: resultOf(bad, ""), Detail: bad, Events: 1}
}
