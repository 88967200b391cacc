package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest/bankfile"
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
	// InvalidIBANs counts the IBAN fields of the file's records (statement
	// account, account, virtual and counterparty IBANs) that fail
	// recon.ValidIBAN, an account given by another id than an IBAN
	// included. The bank's own statements are published all the same
	// (README, producer rules): the count is for a person to look at.
	InvalidIBANs int `json:"invalid_ibans,omitempty"`
	// KafkaTransactions says in how many Kafka transactions the file went.
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

// File publishes a bank file held in memory: FileFrom on its bytes.
func (in *Ingest) File(ctx context.Context, name string, data []byte) (FileSummary, error) {
	sum := sha256.Sum256(data)
	return in.FileFrom(ctx, name, bytes.NewReader(data), hex.EncodeToString(sum[:]))
}

// FileFrom reads a bank file from r — ISO 20022, MT940/MT942 or CFONB 120,
// told by its content (bankfile.Detect) — whose SHA-256 is digest, and
// publishes its records, all or nothing (see HeaderFileComplete). It reads
// r twice, streaming, so memory does not grow with the file: once to check
// it whole — a bad file is refused whole, and dead-lettered — and once to
// publish it, a transaction at a time. A record too large for Kafka is
// dead-lettered alone while the rest of the file is published.
func (in *Ingest) FileFrom(ctx context.Context, name string, r io.ReadSeeker, digest string) (FileSummary, error) {
	fs := FileSummary{File: name, Digest: digest}
	if at, ok := in.fileSeen("sha:" + fs.Digest); ok {
		fs.Duplicate, fs.FirstSeen = true, &at
		return fs, nil
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fs, fmt.Errorf("file %s: %w", name, err)
	}
	s, err := bankfile.Read(r, name, in.limits, func(any) error { return nil })
	if err != nil {
		if dlErr := in.deadLetterFile(ctx, name, err.Error(), r, digest); dlErr != nil {
			return fs, dlErr
		}
		return fs, &InputError{Where: name, Reason: err.Error()}
	}
	fs.Message = s.Message
	if at, ok := in.fileSeen("msg:" + s.Message + "/" + s.MessageID); ok && s.MessageID != "" {
		fs.Duplicate, fs.FirstSeen = true, &at
		return fs, nil
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fs, fmt.Errorf("file %s: read again: %w", name, err)
	}
	p := &filePublisher{in: in, ctx: ctx, fs: &fs, cfg: in.Files.withDefaults(in.kafka), stmt: 1}
	if _, err := bankfile.Read(r, name, in.limits, p.add); err != nil {
		return fs, p.failed(err)
	}
	if err := p.finish(); err != nil {
		return fs, p.failed(err)
	}
	in.rememberFile(fs.Digest, s.Message, s.MessageID, in.now())
	in.m.files.WithLabelValues(fs.Message).Inc()
	in.m.invalidIBANs.Add(float64(fs.InvalidIBANs))
	return fs, nil
}

// deadLetterFile keeps a refused file: its head in the record, the whole of
// it spooled (read from r, not held in memory).
func (in *Ingest) deadLetterFile(ctx context.Context, name, reason string, r io.ReadSeeker, digest string) error {
	size, err := r.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = r.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("file %s: read for the dead letter: %w", name, err)
	}
	head := make([]byte, min(size, MaxDeadLetterRaw))
	if _, err := io.ReadFull(r, head); err != nil {
		return fmt.Errorf("file %s: read for the dead letter: %w", name, err)
	}
	dl := recon.DeadLetter{ID: "file:" + digest[:16], Source: "file", Where: name, Reason: reason, Raw: head, At: in.now().UTC(), Size: size, SHA256: digest}
	if size > MaxDeadLetterRaw {
		dl.Truncated = true
		if in.SpoolDir != "" {
			if _, err := r.Seek(0, io.SeekStart); err == nil {
				dl.Spooled = in.spool(digest, r, size)
			}
		}
	}
	in.m.deadLetters.WithLabelValues("file").Inc()
	return in.publish(ctx, []bus.Event{in.deadLetterRecord(dl)})
}

type recordKind int

const (
	kindTransaction recordKind = iota
	kindStatement
	kindOther
	kindDeadLetter // a record of the file that cannot be stored as it is
)

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
	where := fe.where + " (id " + fe.id + ")"
	return fileEvent{ev: in.deadLetterEvent("file", where, reason, fe.ev.Value), where: fe.where, kind: kindDeadLetter, id: fe.id, reason: reason}
}

// recordID names a record of a file (a bank transaction's id is its
// identity key, not its Kafka key, which is its account).
func recordID(r any) string {
	switch rec := r.(type) {
	case recon.BankTransaction:
		return rec.ID
	case recon.Statement:
		return rec.ID
	case recon.Return:
		return rec.ID
	case recon.StatusReport:
		return rec.MessageID + "/" + rec.OriginalEndToEndID
	}
	return ""
}

// filePublisher publishes the records of one file as the reader emits
// them, a transaction each time one is full; the statements wait for the
// last transaction, which marks them.
type filePublisher struct {
	in         *Ingest
	ctx        context.Context
	fs         *FileSummary
	cfg        FileConfig
	chunk      []fileEvent
	chunkBytes int64
	statements []fileEvent
	stmt, nth  int // coordinates of the next record: statement, and record in it
	records    int // records stored
	stored     FileSummary
}

// add turns one record of the file into its event and publishes the
// transaction it fills.
func (p *filePublisher) add(r any) error {
	fe, ok := p.event(r)
	if !ok {
		return nil
	}
	if fe.kind == kindStatement {
		p.statements = append(p.statements, fe)
		return nil
	}
	n := eventBytes(fe.ev)
	if len(p.chunk) > 0 && (len(p.chunk) >= p.cfg.MaxRecordsPerTransaction || p.chunkBytes+n > p.cfg.MaxBytesPerTransaction) {
		if err := p.flush(false); err != nil {
			return err
		}
	}
	p.chunk = append(p.chunk, fe)
	p.chunkBytes += n
	return nil
}

func eventBytes(ev bus.Event) int64 { return int64(len(ev.Value) + len(ev.Key) + 256) }

// event is the record's event with its coordinates, or a dead letter in
// its place when it is too large for Kafka.
func (p *filePublisher) event(r any) (fileEvent, bool) {
	in, fs := p.in, p.fs
	v, _ := bus.Marshal(r)
	ev := bus.Event{Source: "recon/ingest/file", Time: in.now(), Value: v, Partition: -1}
	p.nth++
	where := fmt.Sprintf("%s: statement %d, record %d", fs.File, p.stmt, p.nth)
	fs.InvalidIBANs += invalidIBANs(r)
	switch rec := r.(type) {
	case recon.BankTransaction:
		ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, recon.PartitionKey(rec), schemas.TypeBankTransaction, rec.ID+"@"+rec.Source+"/"+rec.MessageID
	case recon.Statement:
		rec.FileSHA256 = fs.Digest
		ev.Value, _ = bus.Marshal(rec)
		ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicStatements, rec.AccountIBAN, schemas.TypeStatement, rec.ID
		where = fmt.Sprintf("%s: statement %d (%s)", fs.File, p.stmt, rec.ID)
		p.stmt, p.nth = p.stmt+1, 0
	case recon.Return:
		ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, rec.ID, schemas.TypeReturn, rec.ID
	case recon.StatusReport:
		ev.Topic, ev.Key, ev.Type, ev.ID = schemas.TopicBankTransactions, rec.OriginalEndToEndID, schemas.TypeStatusReport, rec.MessageID+"/"+rec.OriginalEndToEndID
	default:
		return fileEvent{}, false
	}
	fe := fileEvent{ev: ev, where: where, kind: kindOf(r), id: recordID(r)}
	if why := in.tooLarge(ev.Record(in.kafka.Partitions)); why != "" {
		fe = in.fileDeadLetter(fe, why)
	}
	return fe, true
}

// invalidIBANs counts a record's IBANs that fail recon.ValidIBAN.
func invalidIBANs(r any) int {
	var ibans []string
	switch rec := r.(type) {
	case recon.BankTransaction:
		ibans = []string{rec.AccountIBAN, rec.VirtualIBAN, rec.CounterpartyIBAN}
	case recon.Statement:
		ibans = []string{rec.AccountIBAN}
	}
	n := 0
	for _, s := range ibans {
		if s != "" && recon.ValidIBAN(s) != nil {
			n++
		}
	}
	return n
}

func kindOf(r any) recordKind {
	switch r.(type) {
	case recon.BankTransaction:
		return kindTransaction
	case recon.Statement:
		return kindStatement
	}
	return kindOther
}

// finish publishes the last transaction: the entries left and the
// statements, marked (alone if together they would be too many).
func (p *filePublisher) finish() error {
	if len(p.chunk)+len(p.statements) > p.cfg.MaxRecordsPerTransaction && len(p.chunk) > 0 {
		if err := p.flush(false); err != nil {
			return err
		}
	}
	p.chunk = append(p.chunk, p.statements...)
	if err := p.flush(true); err != nil {
		return err
	}
	fs := p.fs
	fs.Transactions, fs.Statements, fs.Other, fs.DeadLetters, fs.KafkaTransactions = p.stored.Transactions, p.stored.Statements, p.stored.Other, p.stored.DeadLetters, p.stored.KafkaTransactions
	return nil
}

// flush publishes the chunk in one transaction; a record Kafka refuses for
// its size is dead-lettered and the transaction tried again.
func (p *filePublisher) flush(last bool) error {
	for attempt := 0; ; attempt++ {
		recs := make([]*kgo.Record, 0, len(p.chunk))
		for _, fe := range p.chunk {
			r := fe.ev.Record(p.in.kafka.Partitions)
			if last && fe.kind == kindStatement {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderFileComplete, Value: []byte(p.fs.Digest)})
			}
			recs = append(recs, r)
		}
		err := p.in.transact(p.ctx, recs)
		var tl *tooLargeError
		if errors.As(err, &tl) && attempt < 3 {
			// the broker's limit is below ours: dead-letter what it refused, try again
			for _, k := range tl.index {
				p.chunk[k] = p.in.fileDeadLetter(p.chunk[k], tl.reason)
			}
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	for _, fe := range p.chunk {
		switch fe.kind {
		case kindTransaction:
			p.stored.Transactions++
		case kindStatement:
			p.stored.Statements++
		case kindDeadLetter:
			p.stored.DeadLetters = append(p.stored.DeadLetters, FileDeadLetter{Where: fe.where, ID: fe.id, Reason: fe.reason})
			p.in.m.deadLetters.WithLabelValues("file").Inc()
		default:
			p.stored.Other++
		}
	}
	p.records += len(p.chunk)
	p.stored.KafkaTransactions++
	p.chunk, p.chunkBytes = p.chunk[:0], 0
	return nil
}

// failed says what a failed publication left: nothing, or a file not
// complete that must be sent again.
func (p *filePublisher) failed(err error) error {
	if p.stored.KafkaTransactions > 0 {
		return fmt.Errorf("%w: file %s not complete: %d records were stored in %d transaction(s) before the failure; send the file again (the repeats are harmless): %w",
			ErrUnavailable, p.fs.File, p.records, p.stored.KafkaTransactions, err)
	}
	return fmt.Errorf("file %s: nothing stored: %w", p.fs.File, err)
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

// FenceFiles starts every file producer now rather than at its first
// file: each initialises its transactional id, which fences the previous
// run's producer of that id and aborts the transaction it left open (a
// run killed mid-file), instead of holding read-committed consumers back
// until the transaction timeout. Call it at start, before LoadFiles.
func (in *Ingest) FenceFiles(ctx context.Context) error {
	cfg := in.Files.withDefaults(in.kafka)
	held := make([]*txnProducer, 0, cfg.Producers)
	defer func() {
		for _, p := range held {
			in.txns.release(p, false)
		}
	}()
	for range cfg.Producers {
		p, err := in.txns.acquire(ctx, in)
		if err != nil {
			return fmt.Errorf("file producers: %w", err)
		}
		if _, _, err := p.cl.ProducerID(ctx); err != nil {
			in.txns.release(p, true)
			return fmt.Errorf("file producer %s: %w", p.id, err)
		}
		held = append(held, p)
	}
	return nil
}

// Close closes the file producers; the Ingest must not publish files after.
func (in *Ingest) Close() { in.txns.close() }

// LoadFiles remembers the files already published whole, from the
// statements marked HeaderFileComplete (read committed), so a file sent
// again is recognised after a restart too.
func (in *Ingest) LoadFiles(ctx context.Context) error {
	_, err := bus.Replay(ctx, in.kafka, schemas.TopicStatements, bus.Partitions(in.kafka.Partitions), func(r *kgo.Record) error {
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
