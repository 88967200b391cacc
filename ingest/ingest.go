// Package ingest turns outside input — bank files (ISO 20022, MT940/MT942,
// CFONB 120), producers' payment
// events and loans, bank webhooks — into versioned events on recon's Kafka
// topics. It answers a caller only after the events are durably in Kafka
// (acks=all, idempotent producer; a file's records in Kafka transactions,
// all or nothing: see file.go), says exactly what was stored, refuses bad
// input with the reason (a record too large for Kafka included: never
// "retry"), and keeps the refused bytes on the dead-letter topic.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest/bankfile"
	"github.com/reconhq/recon/schemas"
)

// Ingest publishes normalized input to Kafka.
type Ingest struct {
	cl     *kgo.Client
	kafka  bus.Config
	limits bankfile.Limits
	now    func() time.Time
	m      metrics

	// SpoolDir keeps dead-lettered inputs too large for a Kafka record,
	// at most SpoolQuotaBytes of them (0: DefaultSpoolQuotaBytes): the
	// oldest go first, counted in recon_ingest_spool_evicted_total.
	SpoolDir        string
	SpoolQuotaBytes int64
	// Files bounds how a file is published (set before the first file).
	Files FileConfig
	// Known answers what was published before (the API view): a second
	// claim on a virtual IBAN, or a loan posted again with other terms, is
	// a 409 (registry.go).
	Known Known
	// MaxRecordBytes is the largest record produced (0: DefaultMaxRecordBytes);
	// a larger one is refused as bad input, never retried.
	MaxRecordBytes int

	txns        txnProducers // transactional producers of files
	uploadsOnce sync.Once
	uploads     chan struct{} // a slot per file upload in progress (FileConfig.MaxUploads)
	spoolMu     sync.Mutex

	filesMu sync.Mutex
	files   map[string]time.Time // "sha:<digest>" and "msg:<message>/<id>" of files already published
	wh      *webhooks            // nil until EnableWebhooks
}

// New returns an Ingest publishing with client cl (shared, idempotent,
// acks=all: see bus.Config.Opts).
func New(cl *kgo.Client, kafka bus.Config, m metrics) *Ingest {
	return &Ingest{cl: cl, kafka: kafka, limits: bankfile.DefaultLimits(), now: time.Now, m: m, files: map[string]time.Time{}}
}

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

// MaxDeadLetterRaw bounds the raw bytes a dead letter carries in Kafka (a
// record must stay well under the broker's message size limit).
const MaxDeadLetterRaw = 256 << 10

// DeadLetter keeps refused input with its raw bytes, source and reason. An
// input larger than MaxDeadLetterRaw keeps its first bytes in the record and
// the whole of it in the spool directory (when one is set), named by its
// digest, so nothing is lost and the dead-letter topic stays writable.
func (in *Ingest) DeadLetter(ctx context.Context, source, where, reason string, raw []byte) error {
	ev := in.deadLetterEvent(source, where, reason, raw)
	in.m.deadLetters.WithLabelValues(source).Inc()
	return in.publish(ctx, []bus.Event{ev})
}

// deadLetterEvent is DeadLetter's record (spooling raw when it is too long
// for one), for a caller that publishes it itself.
func (in *Ingest) deadLetterEvent(source, where, reason string, raw []byte) bus.Event {
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	dl := recon.DeadLetter{ID: source + ":" + digest[:16], Source: source, Where: where, Reason: reason, Raw: raw, At: in.now().UTC(), Size: int64(len(raw)), SHA256: digest}
	if len(raw) > MaxDeadLetterRaw {
		dl.Raw, dl.Truncated = raw[:MaxDeadLetterRaw], true
		if in.SpoolDir != "" {
			dl.Spooled = in.spool(digest, bytes.NewReader(raw), int64(len(raw)))
		}
	}
	return in.deadLetterRecord(dl)
}

func (in *Ingest) deadLetterRecord(dl recon.DeadLetter) bus.Event {
	v, _ := bus.Marshal(dl)
	return bus.Event{Topic: schemas.TopicDeadLetters, Key: dl.ID, Type: schemas.TypeDeadLetter, ID: dl.ID, Source: "recon/ingest/" + dl.Source, Time: in.now(), Value: v, Partition: -1}
}

// Loans validates and publishes loans to the compacted loans topic; errors
// as Transactions.
func (in *Ingest) Loans(ctx context.Context, loans []recon.Loan) error {
	evs := make([]bus.Event, 0, len(loans))
	claims := map[string]string{}
	for i, l := range loans {
		if err := ValidateLoan(l); err != nil {
			return &InputError{Where: fmt.Sprintf("loan[%d]", i), Reason: err.Error()}
		}
		l.VirtualIBAN = recon.NormalizeIBAN(l.VirtualIBAN)
		where := fmt.Sprintf("loan[%d] (loan_id %q)", i, l.LoanID)
		if err := in.checkTerms(where, l); err != nil {
			return err
		}
		if err := in.checkClaim(where, l.VirtualIBAN, l.LoanID, claims); err != nil {
			return err
		}
		ev, err := in.apiEvent(where, schemas.TopicLoans, schemas.TypeLoan, l.LoanID, "loan-", l)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	return in.publish(ctx, evs)
}

// apiEvent is a record of the producer API, keyed by the thing's id, whose
// event id is idPrefix + key + a digest of the value (a retry of the same
// thing is the same event); one too large for Kafka is an *InputError at
// where.
func (in *Ingest) apiEvent(where, topic, typ, key, idPrefix string, v any) (bus.Event, error) {
	val, _ := bus.Marshal(v)
	ev := bus.Event{Topic: topic, Key: key, Type: typ, ID: idPrefix + key + "-" + digest(val), Source: "recon/ingest/api", Time: in.now(), Value: val, Partition: -1}
	if why := in.tooLarge(ev.Record(in.kafka.Partitions)); why != "" {
		return bus.Event{}, &InputError{Where: where, Reason: why}
	}
	return ev, nil
}

// Borrowers validates and publishes borrowers to the compacted borrowers
// topic (IBANs normalized: upper case, no spaces).
func (in *Ingest) Borrowers(ctx context.Context, bs []recon.Borrower) error {
	evs := make([]bus.Event, 0, len(bs))
	claims := map[string]string{}
	for i, b := range bs {
		if err := ValidateBorrower(b); err != nil {
			return &InputError{Where: fmt.Sprintf("borrower[%d]", i), Reason: err.Error()}
		}
		b.VirtualIBAN, b.IBAN = recon.NormalizeIBAN(b.VirtualIBAN), recon.NormalizeIBAN(b.IBAN)
		where := fmt.Sprintf("borrower[%d] (borrower_id %q)", i, b.ID)
		if err := in.checkClaim(where, b.VirtualIBAN, schemas.BorrowerKey(b.ID), claims); err != nil {
			return err
		}
		ev, err := in.apiEvent(where, schemas.TopicBorrowers, schemas.TypeBorrower, b.ID, "borrower-", b)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	return in.publish(ctx, evs)
}

// Transactions validates producer transactions, derives their identity key
// (the producer's own id is kept as producer_id) and publishes them. A
// transaction too large for a Kafka record is an *InputError (nothing is
// published); a batch Kafka stored in part is a *BatchError whose indexes
// refer to txns and to the ids returned.
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
		demoteRF(&t)
		identify(&t)
		if err := ValidateTransaction(t); err != nil {
			return nil, &InputError{Where: fmt.Sprintf("transaction[%d] (id %q)", i, t.ProducerID), Reason: err.Error()}
		}
		v, _ := bus.Marshal(t)
		ev := bus.Event{Topic: schemas.TopicBankTransactions, Key: recon.PartitionKey(t), Type: schemas.TypeBankTransaction, ID: t.ID + "@" + source, Source: "recon/ingest/" + source, Time: in.now(), Value: v, Partition: -1}
		if why := in.tooLarge(ev.Record(in.kafka.Partitions)); why != "" {
			return nil, &InputError{Where: fmt.Sprintf("transaction[%d] (id %q)", i, t.ProducerID), Reason: why}
		}
		evs = append(evs, ev)
		ids = append(ids, t.ID)
	}
	return ids, in.publish(ctx, evs)
}

// identify normalizes a producer's IBANs and names its sighting: the
// producer's own id is kept as
// producer_id; the identity key comes from the bank references
// (recon.IdentityKey), or, when there are none (a mandate id is not one),
// from the producer id: every event is then its own movement, which the
// matcher links to a later referenced sighting of the same money by
// fingerprint (matcher/identity.go) instead of counting it twice.
func identify(t *recon.BankTransaction) {
	t.AccountIBAN, t.VirtualIBAN = recon.NormalizeIBAN(t.AccountIBAN), recon.NormalizeIBAN(t.VirtualIBAN)
	t.CounterpartyIBAN = recon.NormalizeIBAN(t.CounterpartyIBAN)
	if t.ProducerID == "" {
		t.ProducerID = t.ID
	}
	if t.ID = recon.IdentityKey(*t); t.ID == "" {
		t.ID = recon.SightingKey(t.AccountIBAN, t.Direction, "producer", t.ProducerID)
	}
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:6])
}
