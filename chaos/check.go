package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// Checker reads what recon left behind — Kafka read committed, the HTTP
// API, ClickHouse over HTTP — and compares it with a Workload. It shares
// no code with the matcher: its JSON shapes are declared here.
type Checker struct {
	Brokers string
	CHHTTP  string        // ClickHouse HTTP base URL; empty skips ClickHouse
	API     func() string // base URL of a process serving the read API
}

// Report is the outcome of one check.
type Report struct {
	Violations  []string
	Identities  int
	Posted      int // identities posted to a loan
	Suspense    int // identities parked in suspense
	DeadLetters int // refused inputs carrying the run marker
	Entries     int // distinct journal entries of the run
	CHRows      int // ClickHouse postings of the run, FINAL
	CHRawRows   int // the same without FINAL (what the sink wrote, duplicates included)
}

func (r *Report) fail(format string, args ...any) {
	if len(r.Violations) < 30 {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	} else if len(r.Violations) == 30 {
		r.Violations = append(r.Violations, "... (more)")
	}
}

type jEntry struct {
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	TransactionID string `json:"transaction_id"`
	Postings      []struct {
		Account  string          `json:"account"`
		Side     string          `json:"side"`
		Amount   decimal.Decimal `json:"amount"`
		Currency string          `json:"currency"`
	} `json:"postings"`
}

type jDecision struct {
	TransactionID string `json:"transaction_id"`
	Outcome       string `json:"outcome"`
}

func (c *Checker) kc() bus.Config {
	kc := bus.DefaultConfig()
	kc.Brokers = strings.Split(c.Brokers, ",")
	return kc
}

func (c *Checker) partitions(ctx context.Context, topic string) ([]int32, error) {
	cl, err := kgo.NewClient(c.kc().Opts()...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	if td[topic].Err != nil {
		return nil, td[topic].Err
	}
	return td[topic].Partitions.Numbers(), nil
}

// Replay reads every committed record of topic.
func (c *Checker) Replay(ctx context.Context, topic string, fn func(*kgo.Record)) error {
	parts, err := c.partitions(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe %s: %w", topic, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_, err = bus.Replay(ctx, c.kc(), topic, parts, func(r *kgo.Record) error { fn(r); return nil })
	return err
}

// Check compares everything recon holds about w with the model. marker is
// a substring of the run's refused inputs, wantDead how many there are.
func (c *Checker) Check(ctx context.Context, w *Workload, marker string, wantDead int) Report {
	var r Report
	ids := w.IDs()
	r.Identities = len(ids)
	// the journal: each entry once, balanced; each identity posted once
	seen := map[string]int{}
	byID := map[string]string{} // identity -> class
	ledgerRows := map[string]int{}
	bankNet := decimal.Zero
	err := c.Replay(ctx, schemas.TopicLedgerEntries, func(rec *kgo.Record) {
		var e jEntry
		if json.Unmarshal(rec.Value, &e) != nil || !ids[e.TransactionID] {
			return
		}
		seen[e.ID]++
		if seen[e.ID] > 1 {
			r.fail("journal entry %s written %d times (%s/%d@%d)", e.ID, seen[e.ID], rec.Topic, rec.Partition, rec.Offset)
			return
		}
		sums := map[string]decimal.Decimal{}
		class := ""
		for i, p := range e.Postings {
			if p.Amount.Sign() <= 0 {
				r.fail("entry %s posting %d: amount %s not positive", e.ID, i, p.Amount)
			}
			switch p.Side {
			case "debit":
				sums[p.Currency] = sums[p.Currency].Add(p.Amount)
			case "credit":
				sums[p.Currency] = sums[p.Currency].Sub(p.Amount)
			default:
				r.fail("entry %s posting %d: side %q", e.ID, i, p.Side)
			}
			switch {
			case strings.HasPrefix(p.Account, "loan:"):
				class = "posted"
			case p.Account == "suspense" && class == "":
				class = "suspense"
			}
			if p.Account == "bank:"+w.Acct {
				if p.Side == "debit" {
					bankNet = bankNet.Add(p.Amount)
				} else {
					bankNet = bankNet.Sub(p.Amount)
				}
			}
			ledgerRows[fmt.Sprintf("%s|%d|%s|%s|%s", e.ID, i, p.Account, p.Side, p.Amount.String())]++
		}
		for cur, s := range sums {
			if !s.IsZero() {
				r.fail("entry %s does not balance: %s %s", e.ID, s, cur)
			}
		}
		// parked first (its loan not known yet), then re-matched: posted.
		// A real double count shows in the bank total, the loans and the
		// suspense queue checked below.
		if byID[e.TransactionID] != "posted" && class != "" {
			byID[e.TransactionID] = class
		}
	})
	if err != nil {
		r.fail("read journal: %v", err)
		return r
	}
	r.Entries = len(seen)
	for id := range ids {
		switch byID[id] {
		case "posted":
			r.Posted++
		case "suspense":
			r.Suspense++
			if _, ok := w.Unknown[id]; !ok {
				r.fail("identity %s parked in suspense, the model posts it", id)
			}
		default:
			r.fail("identity %s: no journal entry (missing posting)", id)
		}
	}
	if !bankNet.Equal(w.BankNet) {
		r.fail("postings on bank:%s sum to %s, the distinct transactions to %s", w.Acct, bankNet, w.BankNet)
	}
	// decisions: exactly one terminal decision per identity (duplicates and
	// sightings not booked yet are not terminal)
	terminal := map[string]int{}
	if err := c.Replay(ctx, schemas.TopicMatches, func(rec *kgo.Record) {
		var d jDecision
		if ids[string(rec.Key)] && json.Unmarshal(rec.Value, &d) == nil && d.Outcome != "duplicate" && d.Outcome != "not_booked" {
			terminal[string(rec.Key)]++
		}
	}); err != nil {
		r.fail("read decisions: %v", err)
	}
	for id := range ids {
		if terminal[id] != 1 {
			r.fail("identity %s: %d terminal decisions, want 1", id, terminal[id])
		}
	}
	// dead letters
	if marker != "" {
		if err := c.Replay(ctx, schemas.TopicDeadLetters, func(rec *kgo.Record) {
			var d struct {
				Where, Reason string
				Raw           []byte
			}
			if strings.Contains(string(rec.Value), marker) ||
				(json.Unmarshal(rec.Value, &d) == nil && strings.Contains(d.Where+d.Reason+string(d.Raw), marker)) {
				r.DeadLetters++
			}
		}); err != nil {
			r.fail("read dead letters: %v", err)
		}
	}
	if r.DeadLetters < wantDead {
		r.fail("%d dead letters carry %q, want %d", r.DeadLetters, marker, wantDead)
	}
	if got := r.Posted + r.Suspense; got != len(ids) {
		r.fail("inputs not accounted for: %d identities, %d posted + %d suspense", len(ids), r.Posted, r.Suspense)
	}
	// the API
	if c.API != nil {
		for _, v := range c.apiDiff(w, 10) {
			r.fail("API: %s", v)
		}
	}
	// ClickHouse, deduplicated, equals the ledger
	if c.CHHTTP != "" {
		rows, raw, err := c.chPostings(w.Acct)
		if err != nil {
			r.fail("ClickHouse: %v", err)
		} else {
			r.CHRows, r.CHRawRows = len(rows), raw
			for k, n := range rows {
				if n != 1 {
					r.fail("ClickHouse FINAL holds posting %s %d times", k, n)
				}
				if ledgerRows[k] == 0 {
					r.fail("ClickHouse holds posting %s the ledger does not", k)
				}
			}
			for k := range ledgerRows {
				if rows[k] == 0 {
					r.fail("ledger posting %s missing from ClickHouse", k)
				}
			}
		}
	}
	sort.Strings(r.Violations)
	return r
}

// chQuery runs a query over ClickHouse's HTTP interface; TSV lines.
func (c *Checker) chQuery(q string) ([][]string, error) {
	resp, err := httpClient.Get(c.CHHTTP + "/?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	var out [][]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, strings.Split(sc.Text(), "\t"))
	}
	return out, sc.Err()
}

// chPostings reads the postings of the run's transactions (each has an
// entry moving the run's bank account) with FINAL, and counts them without.
func (c *Checker) chPostings(acct string) (map[string]int, int, error) {
	sub := fmt.Sprintf("SELECT transaction_id FROM recon.ledger_postings WHERE account = 'bank:%s'", acct)
	lines, err := c.chQuery("SELECT entry_id, posting_index, account, side, toString(amount) FROM recon.ledger_postings FINAL WHERE transaction_id IN (" + sub + ") FORMAT TabSeparated")
	if err != nil {
		return nil, 0, err
	}
	rows := map[string]int{}
	for _, l := range lines {
		if len(l) != 5 {
			return nil, 0, fmt.Errorf("unexpected row %q", l)
		}
		a, err := decimal.NewFromString(l[4])
		if err != nil {
			return nil, 0, fmt.Errorf("amount %q: %v", l[4], err)
		}
		rows[fmt.Sprintf("%s|%s|%s|%s|%s", l[0], l[1], l[2], l[3], a.String())]++
	}
	raw, err := c.chQuery("SELECT count() FROM recon.ledger_postings WHERE transaction_id IN (" + sub + ") FORMAT TabSeparated")
	n := 0
	if err == nil && len(raw) == 1 {
		_, _ = fmt.Sscan(raw[0][0], &n)
	}
	return rows, n, err
}

// apiDiff compares every loan and the run's suspense items with the model.
func (c *Checker) apiDiff(w *Workload, limit int) []string {
	var bad []string
	get := func(path string, out any) int {
		resp, err := httpClient.Get(c.API() + path)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	for _, l := range w.Loans {
		var got struct{ Paid, Outstanding, Overpaid decimal.Decimal }
		if code := get("/v1/loans/"+l.LoanID, &got); code != http.StatusOK {
			bad = append(bad, fmt.Sprintf("%s: HTTP %d", l.LoanID, code))
		} else if paid, out, over := w.Expected(l.LoanID); !got.Paid.Equal(paid) || !got.Outstanding.Equal(out) || !got.Overpaid.Equal(over) {
			bad = append(bad, fmt.Sprintf("%s: paid/outstanding/overpaid %s/%s/%s, want %s/%s/%s", l.LoanID, got.Paid, got.Outstanding, got.Overpaid, paid, out, over))
		}
		if len(bad) >= limit {
			return bad
		}
	}
	var susp struct {
		Items []struct {
			ID       string
			Amount   decimal.Decimal
			Evidence struct {
				AccountIBAN string `json:"account_iban"`
			}
		}
	}
	get("/v1/suspense?limit=10000&account="+url.QueryEscape(w.Acct), &susp)
	n := 0
	for _, it := range susp.Items {
		if it.Evidence.AccountIBAN != w.Acct {
			continue
		}
		n++
		if a, ok := w.Unknown[it.ID]; !ok || !a.Equal(it.Amount) {
			bad = append(bad, fmt.Sprintf("suspense item %s: %s, want %s", it.ID, it.Amount, a))
		}
	}
	if n != len(w.Unknown) {
		bad = append(bad, fmt.Sprintf("%d suspense items, want %d", n, len(w.Unknown)))
	}
	return bad
}

// Settled polls the API until it agrees with the model or limit passes.
func (c *Checker) Settled(w *Workload, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	last := ""
	for time.Since(start) < limit {
		bad := c.apiDiff(w, 3)
		if len(bad) == 0 {
			return time.Since(start), nil
		}
		last = strings.Join(bad, "; ")
		time.Sleep(500 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("not settled within %s: %s", limit, last)
}

// Writers counts the distinct producers (producer ids) that committed the
// records of topic that mine selects: more than one means the work moved
// between matcher instances.
func (c *Checker) Writers(ctx context.Context, topic string, mine func(*kgo.Record) bool) (int, error) {
	ids := map[int64]bool{}
	err := c.Replay(ctx, topic, func(r *kgo.Record) {
		if mine(r) {
			ids[r.ProducerID] = true
		}
	})
	return len(ids), err
}

// AbortedRecords counts records of topic matching mine that are visible
// read uncommitted but not read committed: written by a transaction that
// was then aborted. It is the Kafka-level evidence that a fault hit a
// transaction in flight.
func (c *Checker) AbortedRecords(ctx context.Context, topic string, mine func(*kgo.Record) bool) (int, error) {
	type at struct {
		p int32
		o int64
	}
	committed := map[at]bool{}
	if err := c.Replay(ctx, topic, func(r *kgo.Record) {
		if mine(r) {
			committed[at{r.Partition, r.Offset}] = true
		}
	}); err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(c.kc().Opts()...)
	if err != nil {
		return 0, err
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	cl.Close()
	if err != nil {
		return 0, err
	}
	offsets := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			offsets[o.Partition] = kgo.NewOffset().AtStart()
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return 0, nil
	}
	rc, err := kgo.NewClient(c.kc().Opts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	n := 0
	for len(want) > 0 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			return n, fmt.Errorf("read %s uncommitted: %v", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() && mine(r) && !committed[at{r.Partition, r.Offset}] {
				n++
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return n, nil
}
