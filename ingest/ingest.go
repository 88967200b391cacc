// Package ingest turns outside input — ISO 20022 files, producers' payment
// events and loans, bank webhooks — into versioned events on recon's Kafka
// topics. It answers a caller only after the events are durably in Kafka
// (acks=all, idempotent producer), refuses bad input with the reason, and
// keeps the refused bytes on the dead-letter topic.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest/iso20022"
	"github.com/reconhq/recon/schemas"
)

// Ingest publishes normalized input to Kafka.
type Ingest struct {
	cl     *kgo.Client
	kafka  bus.Config
	limits iso20022.Limits
	now    func() time.Time
	m      metrics

	// SpoolDir keeps dead-lettered inputs too large for a Kafka record.
	SpoolDir string

	filesMu sync.Mutex
	files   map[string]time.Time // "sha:<digest>" and "msg:<message>/<id>" of files already published
	wh      *webhooks            // nil until EnableWebhooks
}

// New returns an Ingest publishing with client cl (shared, idempotent,
// acks=all: see bus.Config.Opts).
func New(cl *kgo.Client, kafka bus.Config, m metrics) *Ingest {
	return &Ingest{cl: cl, kafka: kafka, limits: iso20022.DefaultLimits(), now: time.Now, m: m, files: map[string]time.Time{}}
}

// LoadFiles remembers the files already published, from the statements
// topic (every camt file yields statement records carrying its digest and
// message id), so a file sent again is recognised after a restart too.
func (in *Ingest) LoadFiles(ctx context.Context) error {
	parts := make([]int32, in.kafka.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	_, err := bus.Replay(ctx, in.kafka, schemas.TopicStatements, parts, func(r *kgo.Record) error {
		var st recon.Statement
		if bus.Unmarshal(r.Value, &st) == nil {
			in.rememberFile(st.FileSHA256, st.Source, st.MessageID, r.Timestamp)
		}
		return nil
	})
	return err
}

func (in *Ingest) rememberFile(digest, message, messageID string, at time.Time) {
	in.filesMu.Lock()
	defer in.filesMu.Unlock()
	if len(in.files) >= maxRememberedFiles {
		return // beyond the limit, identity keys still make a resent file post nothing
	}
	if digest != "" {
		in.files["sha:"+digest] = at
	}
	if messageID != "" {
		in.files["msg:"+message+"/"+messageID] = at
	}
}

func (in *Ingest) fileSeen(keys ...string) (time.Time, bool) {
	in.filesMu.Lock()
	defer in.filesMu.Unlock()
	for _, k := range keys {
		if at, ok := in.files[k]; ok {
			return at, true
		}
	}
	return time.Time{}, false
}

const maxRememberedFiles = 1_000_000

// ErrUnavailable means Kafka did not acknowledge: the caller should retry.
var ErrUnavailable = errors.New("kafka unavailable")

// InputError is bad input: its Reason says what to fix and Where names the
// record or element.
type InputError struct {
	Where  string
	Reason string
}

func (e *InputError) Error() string {
	if e.Where == "" {
		return e.Reason
	}
	return e.Where + ": " + e.Reason
}

func (in *Ingest) publish(ctx context.Context, evs []bus.Event) error {
	recs := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		recs[i] = e.Record(in.kafka.Partitions)
	}
	if err := in.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// MaxDeadLetterRaw bounds the raw bytes a dead letter carries in Kafka (a
// record must stay well under the broker's message size limit).
const MaxDeadLetterRaw = 256 << 10

// DeadLetter keeps refused input with its raw bytes, source and reason. An
// input larger than MaxDeadLetterRaw keeps its first bytes in the record and
// the whole of it in the spool directory (when one is set), named by its
// digest, so nothing is lost and the dead-letter topic stays writable.
func (in *Ingest) DeadLetter(ctx context.Context, source, where, reason string, raw []byte) error {
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	id := source + ":" + digest[:16]
	dl := recon.DeadLetter{ID: id, Source: source, Where: where, Reason: reason, Raw: raw, At: in.now().UTC(), Size: int64(len(raw)), SHA256: digest}
	if len(raw) > MaxDeadLetterRaw {
		dl.Raw, dl.Truncated = raw[:MaxDeadLetterRaw], true
		if in.SpoolDir != "" {
			path := filepath.Join(in.SpoolDir, digest+".raw")
			if err := os.MkdirAll(in.SpoolDir, 0o700); err == nil {
				if err := os.WriteFile(path, raw, 0o600); err == nil {
					dl.Spooled = path
				}
			}
		}
	}
	v, _ := bus.Marshal(dl)
	in.m.deadLetters.WithLabelValues(source).Inc()
	return in.publish(ctx, []bus.Event{{Topic: schemas.TopicDeadLetters, Key: id, Type: schemas.TypeDeadLetter, ID: id, Source: "recon/ingest/" + source, Time: in.now(), Value: v, Partition: -1}})
}

// Loans validates and publishes loans to the compacted loans topic.
func (in *Ingest) Loans(ctx context.Context, loans []recon.Loan) error {
	evs := make([]bus.Event, 0, len(loans))
	for i, l := range loans {
		if err := ValidateLoan(l); err != nil {
			return &InputError{Where: fmt.Sprintf("loan[%d]", i), Reason: err.Error()}
		}
		v, _ := bus.Marshal(l)
		evs = append(evs, bus.Event{Topic: schemas.TopicLoans, Key: l.LoanID, Type: schemas.TypeLoan, ID: "loan-" + l.LoanID + "-" + digest(v), Source: "recon/ingest/api", Time: in.now(), Value: v, Partition: -1})
	}
	return in.publish(ctx, evs)
}

// Transactions validates producer transactions, derives their identity key
// (the producer's own id is kept as producer_id) and publishes them.
func (in *Ingest) Transactions(ctx context.Context, source string, txns []recon.BankTransaction) ([]string, error) {
	evs := make([]bus.Event, 0, len(txns))
	ids := make([]string, 0, len(txns))
	for i, t := range txns {
		t.Type = recon.TypeTransaction
		if t.Status == "" {
			t.Status = recon.Booked
		}
		if t.Source == "" {
			t.Source = source
		}
		identify(&t)
		if err := ValidateTransaction(t); err != nil {
			return nil, &InputError{Where: fmt.Sprintf("transaction[%d] (id %q)", i, t.ProducerID), Reason: err.Error()}
		}
		v, _ := bus.Marshal(t)
		evs = append(evs, bus.Event{Topic: schemas.TopicBankTransactions, Key: recon.PartitionKey(t), Type: schemas.TypeBankTransaction, ID: t.ID + "@" + source, Source: "recon/ingest/" + source, Time: in.now(), Value: v, Partition: -1})
		ids = append(ids, t.ID)
	}
	return ids, in.publish(ctx, evs)
}

// identify names a producer's sighting: the producer's own id is kept as
// producer_id; the identity key comes from the bank references
// (recon.IdentityKey), or, when there are none (a mandate id is not one),
// from the producer id: every event is then its own movement, which the
// matcher links to a later referenced sighting of the same money by
// fingerprint (matcher/identity.go) instead of counting it twice.
func identify(t *recon.BankTransaction) {
	if t.ProducerID == "" {
		t.ProducerID = t.ID
	}
	if t.ID = recon.IdentityKey(*t); t.ID == "" {
		t.ID = recon.SightingKey(t.AccountIBAN, t.Direction, "producer", t.ProducerID)
	}
}

// FileSummary is what POST /v1/bank/files answers.
type FileSummary struct {
	File         string `json:"file"`
	Message      string `json:"message"`
	Transactions int    `json:"transactions"`
	Statements   int    `json:"statements"`
	Other        int    `json:"other"`
	Digest       string `json:"sha256"`
	// Duplicate: this file (same bytes, or same message and message id)
	// was published before, at FirstSeen; nothing was published again.
	Duplicate bool       `json:"duplicate,omitempty"`
	FirstSeen *time.Time `json:"first_seen,omitempty"`
}

// File reads a whole ISO 20022 file and publishes its records; the file is
// refused whole (and dead-lettered) if any part of it is bad.
func (in *Ingest) File(ctx context.Context, name string, data []byte) (FileSummary, error) {
	sum := sha256.Sum256(data)
	fs := FileSummary{File: name, Digest: hex.EncodeToString(sum[:])}
	if at, ok := in.fileSeen("sha:" + fs.Digest); ok {
		fs.Duplicate, fs.FirstSeen = true, &at
		return fs, nil
	}
	recs, s, err := iso20022.ReadAll(bytes.NewReader(data), name, in.limits)
	if err != nil {
		if dlErr := in.DeadLetter(ctx, "file", name, err.Error(), data); dlErr != nil {
			return fs, dlErr
		}
		return fs, &InputError{Where: name, Reason: err.Error()}
	}
	fs.Message = s.Message
	if at, ok := in.fileSeen("msg:" + s.Message + "/" + s.MessageID); ok && s.MessageID != "" {
		fs.Duplicate, fs.FirstSeen = true, &at
		return fs, nil
	}
	var evs []bus.Event
	for _, r := range recs {
		v, _ := bus.Marshal(r)
		ev := bus.Event{Source: "recon/ingest/file", Time: in.now(), Value: v, Partition: -1}
		switch rec := r.(type) {
		case recon.BankTransaction:
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, recon.PartitionKey(rec), schemas.TypeBankTransaction, rec.ID+"@"+rec.Source+"/"+rec.MessageID
			fs.Transactions++
		case recon.Statement:
			rec.FileSHA256 = fs.Digest
			ev.Value, _ = bus.Marshal(rec)
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicStatements, rec.AccountIBAN, schemas.TypeStatement, rec.ID
			fs.Statements++
		case recon.Return:
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, rec.ID, schemas.TypeReturn, rec.ID
			fs.Other++
		case recon.StatusReport:
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, rec.OriginalEndToEndID, schemas.TypeStatusReport, rec.MessageID+"/"+rec.OriginalEndToEndID
			fs.Other++
		default:
			continue
		}
		evs = append(evs, ev)
	}
	for start := 0; start < len(evs); start += 5000 {
		if err := in.publish(ctx, evs[start:min(start+5000, len(evs))]); err != nil {
			return fs, err
		}
	}
	in.rememberFile(fs.Digest, s.Message, s.MessageID, in.now())
	in.m.files.WithLabelValues(fs.Message).Inc()
	return fs, nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:6])
}

// ReadLimited reads at most limit bytes of r, or fails naming the limit.
func ReadLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &InputError{Reason: fmt.Sprintf("body larger than the %d-byte limit", limit)}
	}
	return b, nil
}

func upper(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")) }
