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

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest/iso20022"
	"github.com/reconhq/recon/schemas"
)

// A file is all or nothing. Its records go to Kafka in one transaction; a
// file too large for one (see FileConfig) goes in several, with its
// statements — the records that carry the file's digest — in the last one,
// marked with the header HeaderFileComplete. A file is remembered as seen
// (and a re-sent copy answered 200 duplicate) only once that last
// transaction committed: in memory right after the commit, and after a
// restart from the marked statements (LoadFiles). A file whose publication
// failed midway is therefore published again when re-sent; the records of
// the failed attempt that did commit are repeats downstream identity ignores.
//
// A file without statements (pain.002, pacs.004) has no durable marker: it
// is remembered in memory only, and after a restart a re-sent copy is
// published again (harmless, for the same reason).

// HeaderFileComplete is set, to the file's SHA-256, on the statements
// published in a file's last transaction: seeing one proves every record of
// the file is committed. Statements without it (published before this
// header existed, or by another producer) prove nothing.
const HeaderFileComplete = "recon_file_complete"

// FileConfig bounds how one file is published. Zero fields take the default.
type FileConfig struct {
	// MaxRecordsPerTransaction and MaxBytesPerTransaction split a file too
	// large for one Kafka transaction into several: an open transaction
	// holds back every read-committed consumer of the partitions it wrote.
	MaxRecordsPerTransaction int
	MaxBytesPerTransaction   int64
	// TransactionTimeout: the broker aborts a transaction left open longer.
	TransactionTimeout time.Duration
	// TransactionalID prefixes the transactional ids of the file producers.
	// It must be unique to this ingest process and the same across its
	// restarts, so a restart fences (and aborts) what the previous run left
	// open instead of holding consumers back until TransactionTimeout.
	TransactionalID string
	// Producers is how many files are published at once, one transactional
	// producer each; more uploads wait for one.
	Producers int
	// MaxUploads is how many POST /v1/bank/files are served at once; more
	// are answered 429 with Retry-After.
	MaxUploads int
}

// DefaultFileConfig publishes up to 20,000 records or 32 MiB in one
// transaction, four files at a time, and serves eight uploads at once.
func DefaultFileConfig() FileConfig {
	return FileConfig{MaxRecordsPerTransaction: 20_000, MaxBytesPerTransaction: 32 << 20, TransactionTimeout: time.Minute, Producers: 4, MaxUploads: 8}
}

func (c FileConfig) withDefaults(kafka bus.Config) FileConfig {
	d := DefaultFileConfig()
	if c.MaxRecordsPerTransaction <= 0 {
		c.MaxRecordsPerTransaction = d.MaxRecordsPerTransaction
	}
	if c.MaxBytesPerTransaction <= 0 {
		c.MaxBytesPerTransaction = d.MaxBytesPerTransaction
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = d.TransactionTimeout
	}
	if c.TransactionalID == "" {
		c.TransactionalID = kafka.ClientID + "-ingest-files"
	}
	if c.Producers <= 0 {
		c.Producers = d.Producers
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = d.MaxUploads
	}
	return c
}

// FileSummary is what POST /v1/bank/files answers: what was stored.
type FileSummary struct {
	File         string `json:"file"`
	Message      string `json:"message"`
	Transactions int    `json:"transactions"`
	Statements   int    `json:"statements"`
	Other        int    `json:"other"`
	Digest       string `json:"sha256"`
	// DeadLetters are records of the file that cannot be stored as they
	// are (larger than a Kafka record): each went to the dead-letter topic,
	// with its coordinates, while the rest of the file was published.
	DeadLetters []FileDeadLetter `json:"dead_letters,omitempty"`
	// Transactions says in how many Kafka transactions the file went.
	KafkaTransactions int `json:"kafka_transactions,omitempty"`
	// Duplicate: this file (same bytes, or same message and message id)
	// was published whole before, at FirstSeen; nothing was published again.
	Duplicate bool       `json:"duplicate,omitempty"`
	FirstSeen *time.Time `json:"first_seen,omitempty"`
}

// FileDeadLetter is one record of a file sent to the dead-letter topic.
type FileDeadLetter struct {
	Where  string `json:"where"` // file, statement and record coordinates
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason"`
}

// File reads a whole ISO 20022 file and publishes its records, all or
// nothing (see HeaderFileComplete). The file is refused whole (and
// dead-lettered) if any part of it is bad; a record too large for Kafka is
// dead-lettered alone.
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
	var entries, statements []fileEvent
	stmt, nth := 1, 0 // coordinates of the next record: statement and record index in it
	for _, r := range recs {
		v, _ := bus.Marshal(r)
		ev := bus.Event{Source: "recon/ingest/file", Time: in.now(), Value: v, Partition: -1}
		nth++
		where := fmt.Sprintf("%s: statement %d, record %d", name, stmt, nth)
		switch rec := r.(type) {
		case recon.BankTransaction:
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, rec.ID, schemas.TypeBankTransaction, rec.ID+"@"+rec.Source+"/"+rec.MessageID
		case recon.Statement:
			rec.FileSHA256 = fs.Digest
			ev.Value, _ = bus.Marshal(rec)
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicStatements, rec.AccountIBAN, schemas.TypeStatement, rec.ID
			where = fmt.Sprintf("%s: statement %d (%s)", name, stmt, rec.ID)
			stmt, nth = stmt+1, 0
		case recon.Return:
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, rec.ID, schemas.TypeReturn, rec.ID
		case recon.StatusReport:
			ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, rec.OriginalEndToEndID, schemas.TypeStatusReport, rec.MessageID+"/"+rec.OriginalEndToEndID
		default:
			continue
		}
		fe := fileEvent{ev: ev, where: where, kind: kindOf(r)}
		if why := in.tooLarge(ev.Record(in.kafka.Partitions)); why != "" {
			fe = in.fileDeadLetter(fe, why)
		}
		if fe.kind == kindStatement {
			statements = append(statements, fe)
		} else {
			entries = append(entries, fe)
		}
	}
	// statements last: the last transaction holds them, marked
	if err := in.publishFile(ctx, &fs, append(entries, statements...)); err != nil {
		return fs, err
	}
	in.rememberFile(fs.Digest, s.Message, s.MessageID, in.now())
	in.m.files.WithLabelValues(fs.Message).Inc()
	return fs, nil
}

type recordKind int

const (
	kindTransaction recordKind = iota
	kindStatement
	kindOther
	kindDeadLetter // a record of the file that cannot be stored as it is
)

func kindOf(r any) recordKind {
	switch r.(type) {
	case recon.BankTransaction:
		return kindTransaction
	case recon.Statement:
		return kindStatement
	}
	return kindOther
}

// fileEvent is one record of a file with its coordinates in it.
type fileEvent struct {
	ev     bus.Event
	where  string
	kind   recordKind
	id     string // of the record a dead letter replaces
	reason string // why it was dead-lettered
}

// fileDeadLetter replaces a record of a file that Kafka cannot take by a
// dead letter holding its bytes (spooled whole when long) and coordinates.
func (in *Ingest) fileDeadLetter(fe fileEvent, reason string) fileEvent {
	where := fe.where + " (id " + fe.ev.Key + ")"
	return fileEvent{ev: in.deadLetterEvent("file", where, reason, fe.ev.Value), where: fe.where, kind: kindDeadLetter, id: fe.ev.Key, reason: reason}
}

// publishFile publishes evs in as few transactions as the limits allow,
// marks the statements of the last one, and fills fs with what was stored.
func (in *Ingest) publishFile(ctx context.Context, fs *FileSummary, evs []fileEvent) error {
	cfg := in.Files.withDefaults(in.kafka)
	chunks := split(evs, cfg.MaxRecordsPerTransaction, cfg.MaxBytesPerTransaction)
	stored := FileSummary{}
	attempt := 0
	for i := 0; i < len(chunks); i++ {
		chunk := chunks[i]
		last := i == len(chunks)-1
		recs := make([]*kgo.Record, 0, len(chunk))
		for _, fe := range chunk {
			r := fe.ev.Record(in.kafka.Partitions)
			if last && fe.kind == kindStatement {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderFileComplete, Value: []byte(fs.Digest)})
			}
			recs = append(recs, r)
		}
		err := in.transact(ctx, recs)
		var tl *tooLargeError
		if errors.As(err, &tl) && attempt < 3 {
			// the broker's limit is below ours: dead-letter what it refused, try again
			for _, k := range tl.index {
				chunk[k] = in.fileDeadLetter(chunk[k], tl.reason)
			}
			attempt++
			i--
			continue
		}
		attempt = 0
		if err != nil {
			if i > 0 {
				return fmt.Errorf("%w: file %s not complete: %d of %d records were stored in %d transaction(s) before the failure; send the file again (the repeats are harmless): %w",
					ErrUnavailable, fs.File, countRecords(chunks[:i]), len(evs), i, err)
			}
			return fmt.Errorf("file %s: nothing stored: %w", fs.File, err)
		}
		for _, fe := range chunk {
			switch fe.kind {
			case kindTransaction:
				stored.Transactions++
			case kindStatement:
				stored.Statements++
			case kindDeadLetter:
				stored.DeadLetters = append(stored.DeadLetters, FileDeadLetter{Where: fe.where, ID: fe.id, Reason: fe.reason})
				in.m.deadLetters.WithLabelValues("file").Inc()
			default:
				stored.Other++
			}
		}
	}
	fs.Transactions, fs.Statements, fs.Other, fs.DeadLetters, fs.KafkaTransactions = stored.Transactions, stored.Statements, stored.Other, stored.DeadLetters, len(chunks)
	return nil
}

func countRecords(chunks [][]fileEvent) int {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	return n
}

// split cuts evs into transactions of at most maxRecords records and about
// maxBytes bytes (a record larger than maxBytes goes alone).
func split(evs []fileEvent, maxRecords int, maxBytes int64) [][]fileEvent {
	var chunks [][]fileEvent
	start, size := 0, int64(0)
	for i, fe := range evs {
		n := int64(len(fe.ev.Value) + len(fe.ev.Key) + 256)
		if i > start && (i-start >= maxRecords || size+n > maxBytes) {
			chunks = append(chunks, evs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(evs) || len(chunks) == 0 {
		chunks = append(chunks, evs[start:])
	}
	return chunks
}

// transact produces recs in one Kafka transaction and commits it. On any
// error the transaction is aborted (or, when even that is unsure, its
// producer is replaced: the new one fences what the old left open), so
// nothing of recs is visible to a read-committed consumer.
func (in *Ingest) transact(ctx context.Context, recs []*kgo.Record) error {
	p, err := in.txns.acquire(ctx, in)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	broken := true
	defer func() { in.txns.release(p, broken) }()
	if err := p.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("%w: begin transaction: %v", ErrUnavailable, err)
	}
	results := p.cl.ProduceSync(ctx, recs...)
	if err := results.FirstErr(); err != nil {
		abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if aerr := p.cl.EndTransaction(abortCtx, kgo.TryAbort); aerr == nil {
			broken = false
		}
		if tl := tooLargeIn(recs, results); tl != nil {
			return tl
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// never cancel a commit midway: its outcome would be unknown
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.cl.EndTransaction(endCtx, kgo.TryCommit); err != nil {
		return fmt.Errorf("%w: commit not confirmed (the file is not remembered; send it again): %v", ErrUnavailable, err)
	}
	broken = false
	return nil
}

// tooLargeError names the records of a transaction Kafka refused for their
// size (by index in the transaction).
type tooLargeError struct {
	index  []int
	reason string
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%d records refused by Kafka: %s", len(e.index), e.reason)
}

func tooLargeIn(recs []*kgo.Record, results kgo.ProduceResults) *tooLargeError {
	at := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		at[r] = i
	}
	var tl *tooLargeError
	for _, res := range results {
		if res.Err != nil && (errors.Is(res.Err, kerr.MessageTooLarge) || errors.Is(res.Err, kerr.RecordListTooLarge)) {
			if tl == nil {
				tl = &tooLargeError{reason: "refused by Kafka: " + res.Err.Error()}
			}
			tl.index = append(tl.index, at[res.Record])
		}
	}
	return tl
}

// txnProducers is a pool of transactional producers, one per file being
// published; each keeps its transactional id (prefix-<slot>) for life.
type txnProducers struct {
	once  sync.Once
	slots chan *txnProducer
	mu    sync.Mutex
	all   []*txnProducer
}

type txnProducer struct {
	id string
	cl *kgo.Client // nil until first used, or after it broke
}

func (t *txnProducers) init(in *Ingest) {
	t.once.Do(func() {
		cfg := in.Files.withDefaults(in.kafka)
		t.slots = make(chan *txnProducer, cfg.Producers)
		for i := 0; i < cfg.Producers; i++ {
			p := &txnProducer{id: fmt.Sprintf("%s-%d", cfg.TransactionalID, i)}
			t.all = append(t.all, p)
			t.slots <- p
		}
	})
}

func (t *txnProducers) acquire(ctx context.Context, in *Ingest) (*txnProducer, error) {
	t.init(in)
	var p *txnProducer
	select {
	case p = <-t.slots:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.cl == nil {
		cfg := in.Files.withDefaults(in.kafka)
		cl, err := kgo.NewClient(in.kafka.Opts(kgo.TransactionalID(p.id), kgo.TransactionTimeout(cfg.TransactionTimeout))...)
		if err != nil {
			t.slots <- p
			return nil, err
		}
		t.mu.Lock()
		p.cl = cl
		t.mu.Unlock()
	}
	return p, nil
}

func (t *txnProducers) release(p *txnProducer, broken bool) {
	if broken {
		t.mu.Lock()
		p.cl.Close()
		p.cl = nil
		t.mu.Unlock()
	}
	t.slots <- p
}

func (t *txnProducers) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.all {
		if p.cl != nil {
			p.cl.Close()
			p.cl = nil
		}
	}
}

// Close closes the file producers; the Ingest must not publish files after.
func (in *Ingest) Close() { in.txns.close() }

// LoadFiles remembers the files already published whole, from the
// statements marked HeaderFileComplete (read committed), so a file sent
// again is recognised after a restart too.
func (in *Ingest) LoadFiles(ctx context.Context) error {
	parts := make([]int32, in.kafka.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	_, err := bus.Replay(ctx, in.kafka, schemas.TopicStatements, parts, func(r *kgo.Record) error {
		digest := bus.Header(r, HeaderFileComplete)
		if digest == "" {
			return nil // not proof that its file is complete
		}
		var st recon.Statement
		if bus.Unmarshal(r.Value, &st) == nil {
			in.rememberFile(digest, st.Source, st.MessageID, r.Timestamp)
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
		if _, ok := in.files["sha:"+digest]; !ok {
			in.files["sha:"+digest] = at
		}
	}
	if messageID != "" {
		if _, ok := in.files["msg:"+message+"/"+messageID]; !ok {
			in.files["msg:"+message+"/"+messageID] = at
		}
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
