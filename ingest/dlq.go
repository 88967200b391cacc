package ingest

// Dead letters, read back and redriven.
//
// A redrive re-publishes a dead letter's raw bytes through the path they
// came from: a refused file through File under its original name, a
// refused transactions or loans body through the same validators, a
// refused webhook event through the webhook's own parsing, a record the
// matcher refused back onto the topic it was consumed from. Identity keys
// make this idempotent: a redriven transaction that had posted after all is
// recognised as a duplicate. A successful redrive is recorded on the
// dead-letter topic itself by a marker, a DeadLetter-shaped record (so
// every reader of the topic still understands it) with Source "redrive"
// and ID "redriven:<original id>"; a second redrive skips marked letters.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest/bankfile"
	"github.com/reconhq/recon/schemas"
)

// RedriveSource is the Source of the markers a redrive leaves.
const RedriveSource = "redrive"

const redrivenPrefix = "redriven:"

// Letter is one dead letter as read back from the topic, with whether it
// was redriven already.
type Letter struct {
	recon.DeadLetter
	// Record is the dead letter's own coordinates, topic/partition@offset.
	Record string `json:"record"`
	// Seen counts the records with this id (the same bytes refused again).
	Seen int `json:"seen"`
	// Redriven is when a redrive succeeded, with what it did; nil if never.
	Redriven *time.Time `json:"redriven,omitempty"`
	Result   string     `json:"redrive_result,omitempty"`
}

// ReadDeadLetters reads the whole dead-letter topic (read committed) and
// returns one Letter per id, oldest first, with redrive markers applied.
func ReadDeadLetters(ctx context.Context, kc bus.Config) ([]Letter, error) {
	parts := bus.Partitions(kc.Partitions)
	byID := map[string]*Letter{}
	type mark struct {
		at     time.Time
		result string
	}
	marks := map[string]mark{}
	_, err := bus.Replay(ctx, kc, schemas.TopicDeadLetters, parts, func(r *kgo.Record) error {
		var dl recon.DeadLetter
		if err := json.Unmarshal(r.Value, &dl); err != nil {
			dl = recon.DeadLetter{ID: bus.Where(r), Source: "unknown", Reason: "unreadable dead letter: " + err.Error(), Raw: r.Value, At: r.Timestamp}
		}
		if dl.Source == RedriveSource && strings.HasPrefix(dl.ID, redrivenPrefix) {
			marks[strings.TrimPrefix(dl.ID, redrivenPrefix)] = mark{dl.At, dl.Reason}
			return nil
		}
		if dl.ID == "" {
			dl.ID = bus.Where(r)
		}
		if l, ok := byID[dl.ID]; ok {
			l.Seen++
			return nil
		}
		byID[dl.ID] = &Letter{DeadLetter: dl, Record: bus.Where(r), Seen: 1}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]Letter, 0, len(byID))
	for id, l := range byID {
		if m, ok := marks[id]; ok {
			at := m.at
			l.Redriven, l.Result = &at, m.result
		}
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].At.Before(out[j].At) || out[i].At.Equal(out[j].At) && out[i].ID < out[j].ID
	})
	return out, nil
}

// ErrNotRedrivable means a dead letter's bytes cannot go back through any
// path (an unknown source, or a matcher record that is not JSON).
var ErrNotRedrivable = errors.New("not redrivable")

// Redrive publishes a dead letter's raw bytes again through the path they
// came from and says what it did. With dryRun it only checks that the
// bytes would be accepted, publishing nothing. A successful redrive (not a
// dry run) is marked on the dead-letter topic.
func (in *Ingest) Redrive(ctx context.Context, l Letter, dryRun bool) (string, error) {
	result, err := in.redrive(ctx, l, dryRun)
	if err != nil || dryRun {
		return result, err
	}
	now := in.now().UTC()
	m := recon.DeadLetter{ID: redrivenPrefix + l.ID, Source: RedriveSource, Where: l.Record, Reason: result, At: now}
	v, _ := json.Marshal(m)
	if err := in.publish(ctx, []bus.Event{{Topic: schemas.TopicDeadLetters, Key: l.ID, Type: schemas.TypeDeadLetter, ID: m.ID,
		Source: "recon/dlq", Time: now, Value: v, Partition: -1}}); err != nil {
		return result, fmt.Errorf("redriven (%s) but the marker was not stored, a second redrive repeats it harmlessly: %w", result, err)
	}
	return result, nil
}

func (in *Ingest) redrive(ctx context.Context, l Letter, dryRun bool) (string, error) {
	raw := l.Raw
	if l.Truncated {
		if l.Spooled == "" {
			return "", fmt.Errorf("%w: only the first %d of %d bytes were kept (no spool directory)", ErrNotRedrivable, len(l.Raw), l.Size)
		}
		whole, err := os.ReadFile(l.Spooled)
		if err != nil {
			return "", fmt.Errorf("dead letter %s: spooled input: %w", l.ID, err)
		}
		if sum := sha256.Sum256(whole); hex.EncodeToString(sum[:]) != l.SHA256 {
			return "", fmt.Errorf("dead letter %s: spooled input %s does not match its digest", l.ID, l.Spooled)
		}
		raw = whole
	}
	switch l.Source {
	case "file":
		if dryRun {
			if _, _, err := bankfile.ReadAll(bytes.NewReader(raw), l.Where, in.limits); err != nil {
				return "", &InputError{Where: l.Where, Reason: err.Error()}
			}
			return "file " + l.Where + " would be published", nil
		}
		s, err := in.File(ctx, l.Where, raw)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("file %s: %s, %d transactions, %d statements", l.Where, s.Message, s.Transactions, s.Statements), nil
	case "transactions":
		var txns []recon.BankTransaction
		if err := decodeBatch(raw, &txns); err != nil {
			return "", err
		}
		if dryRun {
			return fmt.Sprintf("%d transactions would be published", len(txns)), validateTransactions(txns)
		}
		ids, err := in.Transactions(ctx, "api", txns)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d transactions published", len(ids)), nil
	case "loans":
		var loans []recon.Loan
		if err := decodeBatch(raw, &loans); err != nil {
			return "", err
		}
		for i, lo := range loans {
			if err := ValidateLoan(lo); err != nil {
				return "", &InputError{Where: fmt.Sprintf("loan[%d]", i), Reason: err.Error()}
			}
		}
		if dryRun {
			return fmt.Sprintf("%d loans would be published", len(loans)), nil
		}
		if err := in.Loans(ctx, loans); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d loans published", len(loans)), nil
	case "webhook":
		txn, err := in.webhookTransaction(raw)
		if err != nil {
			return "", err
		}
		if dryRun {
			return "1 transaction would be published", validateTransactions([]recon.BankTransaction{txn})
		}
		ids, err := in.Transactions(ctx, "webhook", []recon.BankTransaction{txn})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d transactions published", len(ids)), nil
	case "matcher/route", "matcher/post":
		topic, key, typ := schemas.TopicBankTransactions, "", schemas.TypeBankTransaction
		if l.Source == "matcher/post" {
			var rt struct {
				Key string `json:"key"`
			}
			if err := json.Unmarshal(raw, &rt); err != nil || rt.Key == "" {
				return "", fmt.Errorf("%w: routed record without a key: %v", ErrNotRedrivable, err)
			}
			topic, key, typ = schemas.TopicRouted, rt.Key, schemas.TypeRouted
		} else {
			var t recon.BankTransaction
			if err := json.Unmarshal(raw, &t); err != nil || t.ID == "" {
				return "", fmt.Errorf("%w: bank transaction without an id: %v", ErrNotRedrivable, err)
			}
			key = t.ID
		}
		if dryRun {
			return "1 record would go back to " + topic, nil
		}
		now := in.now()
		if err := in.publish(ctx, []bus.Event{{Topic: topic, Key: key, Type: typ, ID: "redrive-" + l.ID, Source: "recon/dlq",
			Time: now, Value: raw, Partition: -1}}); err != nil {
			return "", err
		}
		return "1 record back on " + topic, nil
	}
	return "", fmt.Errorf("%w: source %q has no ingest path", ErrNotRedrivable, l.Source)
}

// decodeBatch reads one JSON object or an array, as the HTTP API does.
func decodeBatch(raw []byte, out any) error {
	body := bytes.TrimSpace(raw)
	if len(body) > 0 && body[0] == '{' {
		body = append(append([]byte{'['}, body...), ']')
	}
	// amounts first, with the one amount parser: its refusals name the rule
	if err := checkAmountsJSON(body, out); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return &InputError{Reason: "invalid JSON: " + err.Error()}
	}
	if n := countOf(out); n == 0 || n > MaxBatch {
		return &InputError{Reason: fmt.Sprintf("a batch holds 1 to %d items, got %d", MaxBatch, n)}
	}
	return nil
}

// validateTransactions runs Transactions' checks without publishing.
func validateTransactions(txns []recon.BankTransaction) error {
	for i, t := range txns {
		t.Type = recon.TypeTransaction
		if t.Status == "" {
			t.Status = recon.Booked
		}
		demoteRF(&t)
		identify(&t)
		if err := ValidateTransaction(t); err != nil {
			return &InputError{Where: fmt.Sprintf("transaction[%d]", i), Reason: err.Error()}
		}
	}
	return nil
}

// webhookTransaction turns a refused webhook body back into its
// transaction: a fat event, or a bank API resource (what a thin event's
// fetch answered).
func (in *Ingest) webhookTransaction(raw []byte) (recon.BankTransaction, error) {
	account := ""
	if in.wh != nil {
		account = in.wh.cfg.AccountIBAN
	}
	var b bankTxn
	messageID := ""
	if ev, err := parseEvent(raw); err == nil {
		if ev.ignore {
			return recon.BankTransaction{}, &InputError{Reason: "event type " + ev.Type + " moves no money"}
		}
		if ev.thin {
			return recon.BankTransaction{}, fmt.Errorf("%w: a thin event: its transaction must be fetched from the bank again", ErrNotRedrivable)
		}
		b, messageID = ev.Data, ev.ID
	} else if err2 := json.Unmarshal(raw, &b); err2 != nil || b.ID == "" {
		return recon.BankTransaction{}, &InputError{Reason: "neither a webhook event nor a bank transaction: " + err.Error()}
	}
	t, err := b.transaction(account)
	if err != nil {
		return t, &InputError{Reason: err.Error()}
	}
	t.MessageID = messageID
	return t, nil
}
