package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// fileAnswer is what POST /v1/bank/files answers (declared here, as the
// checker's shapes are).
type fileAnswer struct {
	Transactions      int  `json:"transactions"`
	KafkaTransactions int  `json:"kafka_transactions"`
	Duplicate         bool `json:"duplicate"`
	DeadLetters       []struct {
		Where, ID, Reason string
	} `json:"dead_letters"`
}

// postFile sends a file until an answer that is not 5xx, 408 or 429 (up
// to limit) and decodes it.
func postFile(base func() string, name string, doc []byte, limit time.Duration) (int, fileAnswer, error) {
	deadline := time.Now().Add(limit)
	for {
		code, body := 0, ""
		resp, err := httpClient.Post(base()+"/v1/bank/files?name="+name, "application/xml", bytes.NewReader(doc))
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
		} else {
			body = err.Error()
		}
		if code != 0 && code/100 != 5 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
			var a fileAnswer
			if code/100 == 2 {
				if err := json.Unmarshal([]byte(body), &a); err != nil {
					return code, a, fmt.Errorf("answer to %s: %w: %s", name, err, trunc(body, 200))
				}
			}
			return code, a, nil
		}
		if time.Now().After(deadline) {
			return code, fileAnswer{}, fmt.Errorf("POST %s: no answer within %s: %d %s", name, limit, code, trunc(body, 200))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stableSum is the sum of the last stable offsets of topic's partitions:
// it grows when a transaction writing to it commits.
func (e *Env) stableSum(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	offs, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, offs.Error()
}

// killedMidFile uploads a camt.053 of thousands of entries that ingest
// publishes in many Kafka transactions (RECON_INGEST_FILE_TXN_RECORDS), and
// SIGKILLs ingest once part of it is committed; after the restart the same
// file, sent again, must be published again (not answered duplicate), and
// every entry ends posted or parked once.
func killedMidFile(e *Env) Row {
	const perTxn = 100
	w := e.NewRun(min(6000, e.Tier.Txns/2))
	if err := Publish(e.ingestBase, &Workload{Loans: w.Loans}, time.Minute); err != nil {
		return failRow(err)
	}
	var entries []CamtEntry
	for _, t := range w.Distinct {
		entries = append(entries, CamtEntry{Ref: t.BankReference, Amount: t.Amount.StringFixed(2), VIBAN: t.VirtualIBAN})
	}
	doc := []byte(Camt("kill-"+w.Run, w.Acct, false, entries))
	name := "kill-" + w.Run + ".xml"
	e.Ingest.Stop()
	if err := e.StartIngest(fmt.Sprintf("RECON_INGEST_FILE_TXN_RECORDS=%d", perTxn)); err != nil {
		return failRow(err)
	}
	cl, err := kgo.NewClient(e.Checker().kc().Opts()...)
	if err != nil {
		return failRow(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	before, err := e.stableSum(e.ctx, adm, schemas.TopicBankTransactions)
	if err != nil {
		return failRow(err)
	}
	answered := make(chan int, 1)
	go func() {
		code, _ := send(e.ingestBase(), "/v1/bank/files?name="+name, http.Header{"Content-Type": {"application/xml"}}, doc)
		answered <- code
	}()
	// the fault: SIGKILL once a first transaction of the file committed
	deadline := time.Now().Add(2 * time.Minute)
	killed := false
	for !killed && time.Now().Before(deadline) {
		n, err := e.stableSum(e.ctx, adm, schemas.TopicBankTransactions)
		if err == nil && n > before {
			e.Ingest.Signal(syscall.SIGKILL)
			killed = true
			break
		}
		select {
		case code := <-answered:
			return failRow(fmt.Errorf("the file was answered %d before any of its transactions was seen committed", code))
		case <-time.After(5 * time.Millisecond):
		}
	}
	if !killed {
		return failRow(fmt.Errorf("no transaction of the file committed within 2 min"))
	}
	code := <-answered
	_, atKill := e.countKeys(nil, w.Acct) // the file's entries committed when ingest died
	if err := e.StartIngest(); err != nil {
		return failRow(err)
	}
	faultEnd := time.Now()
	code2, again, err := postFile(e.ingestBase, name, doc, 2*time.Minute)
	if err != nil {
		return failRow(err)
	}
	var bad []string
	if code2/100 != 2 || again.Duplicate {
		bad = append(bad, fmt.Sprintf("the file sent again after the kill was answered %d duplicate=%v: its missing entries would never be published", code2, again.Duplicate))
	}
	if again.Transactions != len(entries) {
		bad = append(bad, fmt.Sprintf("the file sent again published %d transactions, want %d", again.Transactions, len(entries)))
	}
	r, rec := e.verify(w, "", 0, faultEnd)
	r.Violations = append(bad, r.Violations...)
	return rowOf(r, fmt.Sprintf("%d entries, %d per Kafka transaction; ingest SIGKILLed with %d of them committed (upload answered %d); sent again: %d, %d transactions in %d Kafka transactions, duplicate=%v",
		len(entries), perTxn, atKill, code, code2, again.Transactions, again.KafkaTransactions, again.Duplicate),
		unless(atKill > 0 && atKill < len(entries), fmt.Sprintf("%d of %d entries committed at the kill: not part of the file", atKill, len(entries))), rec, 2*len(entries))
}

// recordTooLargeInFile sends a statement one of whose entries carries a
// remittance text larger than a Kafka record: the other entries post, the
// large one is a dead letter with its coordinates, and the file sent again
// books nothing twice.
func recordTooLargeInFile(e *Env) Row {
	w := e.NewRun(40)
	if err := Publish(e.ingestBase, &Workload{Loans: w.Loans}, time.Minute); err != nil {
		return failRow(err)
	}
	var rmt strings.Builder
	for rmt.Len() < 1_200_000 { // under the reader's 64 KiB a text, over a record in all
		rmt.WriteString("<Ustrd>" + strings.Repeat("r", 60_000) + "</Ustrd>")
	}
	bigRef := "BIG-" + w.Run
	var entries []CamtEntry
	for i, t := range w.Distinct {
		entries = append(entries, CamtEntry{Ref: t.BankReference, Amount: t.Amount.StringFixed(2), VIBAN: t.VirtualIBAN})
		if i == len(w.Distinct)/2 {
			entries = append(entries, CamtEntry{Ref: bigRef, Amount: "12.34", VIBAN: w.Loans[0].VirtualIBAN, Rmt: rmt.String()})
		}
	}
	doc := []byte(Camt("big-"+w.Run, w.Acct, false, entries))
	name := "big-" + w.Run + ".xml"
	code, first, err := postFile(e.ingestBase, name, doc, 2*time.Minute)
	if err != nil {
		return failRow(err)
	}
	code2, again, err := postFile(e.ingestBase, name, doc, 2*time.Minute)
	if err != nil {
		return failRow(err)
	}
	var bad []string
	wantWhere := fmt.Sprintf("%s: statement 1, record %d", name, len(w.Distinct)/2+2)
	switch {
	case code/100 != 2:
		bad = append(bad, fmt.Sprintf("the file was answered %d, want 2xx with one dead letter", code))
	case len(first.DeadLetters) != 1:
		bad = append(bad, fmt.Sprintf("the answer lists %d dead letters, want 1", len(first.DeadLetters)))
	case !strings.HasPrefix(first.DeadLetters[0].Where, wantWhere) || first.DeadLetters[0].ID == "":
		bad = append(bad, fmt.Sprintf("the dead letter is at %q (id %q), want %q and an id", first.DeadLetters[0].Where, first.DeadLetters[0].ID, wantWhere))
	}
	if first.Transactions != len(w.Distinct) {
		bad = append(bad, fmt.Sprintf("the answer says %d transactions stored, want %d", first.Transactions, len(w.Distinct)))
	}
	if code2/100 != 2 || !again.Duplicate {
		bad = append(bad, fmt.Sprintf("the file sent again was answered %d duplicate=%v, want 2xx duplicate", code2, again.Duplicate))
	}
	if _, n := e.countKeys(nil, bigRef); n > 0 {
		bad = append(bad, fmt.Sprintf("%d records of the large entry reached the bank transactions topic", n))
	}
	r, _ := e.verify(w, name, 1, time.Now())
	if r.DeadLetters != 1 {
		bad = append(bad, fmt.Sprintf("%d dead letters of the file, want exactly 1", r.DeadLetters))
	}
	r.Violations = append(bad, r.Violations...)
	where := ""
	if len(first.DeadLetters) > 0 {
		where = first.DeadLetters[0].Where
	}
	return rowOf(r, fmt.Sprintf("%d entries + one with a %d-byte remittance text: answered %d, %d transactions stored, dead letter at %q; sent again: %d duplicate=%v",
		len(w.Distinct), rmt.Len(), code, first.Transactions, where, code2, again.Duplicate),
		unless(r.DeadLetters > 0, "no dead letter of the large entry"), 0, 2*(len(w.Distinct)+1))
}
