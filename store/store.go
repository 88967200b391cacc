// Package store keeps a stage's state on local disk, so that a restart
// reads only what Kafka committed since the last checkpoint instead of all
// of history. It is the one package that imports the embedded key-value
// store (cockroachdb/pebble).
//
// A DB holds the state of every partition a process owns, each under its
// own prefix (a Part). A Part buffers the writes of the Kafka transaction
// being decided (reads see them at once); Commit writes them, with the
// Mark saying which changelog offset they reflect, in one atomic batch —
// called only once the transaction has committed, so the store never holds
// what an aborted transaction decided. A store that is lost, stale (an
// older copy), from another cluster, or corrupt is either caught up from
// the changelog tail after its Mark or wiped and rebuilt, never trusted
// beyond what its Mark says.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// cacheBytes is the block cache of one DB: the reads of the hot path
// (identities of the last days, the loans being paid) stay in it.
const cacheBytes = 64 << 20

// memTableBytes bounds what is buffered before a flush to a table file.
const memTableBytes = 16 << 20

// DB is the local state of one component of a process.
type DB struct {
	db       *pebble.DB
	dir      string
	flushing sync.WaitGroup // Part commits being written
}

// Open opens (or creates) the store in dir; dir "" keeps it in memory. A
// store that cannot be opened for any reason other than being in use by
// another process (a truncated or corrupt file, a format it cannot read) is
// removed and created empty, logged with the reason: its owner rebuilds
// what it needs from the changelogs.
func Open(dir string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	db, err := open(dir)
	if err == nil || dir == "" {
		return db, err
	}
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	log.Warn("local state store unreadable: removed, to be rebuilt from the changelogs", "dir", dir, "err", err)
	if rmErr := os.RemoveAll(dir); rmErr != nil {
		return nil, fmt.Errorf("store %s: unreadable (%v) and cannot be removed: %w", dir, err, rmErr)
	}
	return open(dir)
}

// ErrInUse is a store another process (or this one) has open: two
// instances with one data dir and instance name, or a predecessor that has
// not exited yet.
var ErrInUse = errors.New("in use by another process (one data dir per instance)")

func open(dir string) (d *DB, err error) {
	opts := &pebble.Options{
		Cache:        pebble.NewCache(cacheBytes),
		MemTableSize: memTableBytes,
		Logger:       quiet{},
	}
	defer opts.Cache.Unref()
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// the plain file system: pebble's default wraps it in a disk-health
	// checker whose goroutine a failed open leaves running
	opts.FS = vfs.Default
	if dir == "" {
		opts.FS = vfs.NewMem()
	} else {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store %s: %w", dir, err)
		}
	}
	defer func() {
		// pebble panics on some corrupt files instead of returning an error
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("store %s: open: %v", dir, p)
		}
	}()
	db, err := pebble.Open(dir, opts)
	if err != nil && inUse(err) {
		return nil, fmt.Errorf("%w: %v", ErrInUse, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: open: %w", dir, err)
	}
	return &DB{db: db, dir: dir}, nil
}

// inUse tells an open that failed on the store's lock file (another
// process, or this one, has the store open) from a store that is broken.
func inUse(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "LOCK") || strings.Contains(msg, "lock held") || strings.Contains(msg, "temporarily unavailable")
}

// Close closes the store.
func (d *DB) Close() error {
	d.flushing.Wait()
	return d.db.Close()
}

// Dir is where the store lives ("" in memory).
func (d *DB) Dir() string { return d.dir }

// Part is the state of one partition of one stage, under its prefix
// (for instance "route/p003/"). It implements matcher.KV.
type Part struct {
	d       *DB
	prefix  string
	pending map[string][]byte // writes not yet committed; a nil value is a delete
	// flushing are the writes of the last Commit while its batch is
	// written (read only), done its result.
	flushing map[string][]byte
	done     chan error
	// memo holds committed values read or written lately, absent keys
	// too (nil): a stage looks a key up several times while it decides
	// (a new movement's references, first to find it, then to index it),
	// and most lookups are of keys that do not exist. Only this Part
	// writes its keys, so the memo is exact; it is dropped whole when it
	// holds memoBytes.
	memo      map[string][]byte
	memoBytes int
	// keys filters the lookups of keys the Part does not hold (nil until
	// the first lookup builds it).
	keys *filter
	err  error
}

// memoLimit bounds a Part's memo.
const memoLimit = 4 << 20

// Part returns the state under prefix, with nothing pending. It first
// waits for every batch still being written, so a Part never reads under a
// write of an earlier Part of the same prefix (a partition revoked and
// assigned again).
func (d *DB) Part(prefix string) *Part {
	d.flushing.Wait()
	return &Part{d: d, prefix: prefix, pending: map[string][]byte{}, memo: map[string][]byte{}}
}

func (p *Part) remember(key string, v []byte) {
	if p.memoBytes >= memoLimit {
		clear(p.memo)
		p.memoBytes = 0
	}
	p.memo[key] = v
	p.memoBytes += len(key) + len(v) + 48
}

// Data keys sit under prefix+"d", the Mark at prefix+"m".
func (p *Part) key(k string) []byte { return []byte(p.prefix + "d" + k) }
func (p *Part) markKey() []byte     { return []byte(p.prefix + "m") }
func (p *Part) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *Part) get(k []byte) ([]byte, bool, error) {
	v, c, err := p.d.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	return bytes.Clone(v), true, nil
}

// Get returns the value of key: pending, or as committed.
func (p *Part) Get(key string) ([]byte, bool) {
	if v, ok := p.pending[key]; ok {
		return v, v != nil
	}
	if v, ok := p.flushing[key]; ok {
		return v, v != nil
	}
	if v, ok := p.memo[key]; ok {
		return v, v != nil
	}
	if p.keys == nil || p.keys.full() {
		p.buildFilter()
	}
	if p.keys != nil && !p.keys.mayContain(key) {
		return nil, false
	}
	v, ok, err := p.get(p.key(key))
	if err != nil {
		p.fail(fmt.Errorf("store %s: get %q: %w", p.prefix, key, err))
		return nil, false
	}
	p.remember(key, v)
	return v, ok
}

// Set records a write of the transaction being decided.
func (p *Part) Set(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	if _, ok := p.pending[key]; !ok && p.keys != nil {
		p.keys.add(key)
	}
	p.pending[key] = value
}

// buildFilter (re)builds the key filter by one scan of the committed keys
// and those pending; on a read failure the Part goes on without it.
func (p *Part) buildFilter() {
	n := len(p.pending)
	if p.keys != nil {
		n = p.keys.n
	}
	f := newFilter(n)
	lo := p.key("")
	it, err := p.d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(lo), KeyTypes: pebble.IterKeyTypePointsOnly})
	if err != nil {
		p.keys = nil
		return
	}
	defer it.Close()
	strip := len(lo)
	for ok := it.First(); ok; ok = it.Next() {
		f.add(string(it.Key()[strip:]))
	}
	if it.Error() != nil {
		p.keys = nil
		return
	}
	for k := range p.flushing {
		f.add(k)
	}
	for k := range p.pending {
		f.add(k)
	}
	p.keys = f
}

// Delete records a delete of the transaction being decided.
func (p *Part) Delete(key string) { p.pending[key] = nil }

// Scan visits the keys with prefix in order, pending writes included.
func (p *Part) Scan(prefix string, fn func(key string, value []byte) bool) {
	if err := p.wait(); err != nil {
		p.fail(err)
		return
	}
	var over []string
	for k := range p.pending {
		if strings.HasPrefix(k, prefix) {
			over = append(over, k)
		}
	}
	slices.Sort(over)
	lo := p.key(prefix)
	it, err := p.d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(lo)})
	if err != nil {
		p.fail(fmt.Errorf("store %s: scan %q: %w", p.prefix, prefix, err))
		return
	}
	defer it.Close()
	strip := len(p.prefix) + 1
	visit := func(k string, v []byte) bool { return v == nil || fn(k, v) }
	for ok := it.First(); ok; ok = it.Next() {
		k := string(it.Key()[strip:])
		for len(over) > 0 && over[0] < k {
			if !visit(over[0], p.pending[over[0]]) {
				return
			}
			over = over[1:]
		}
		if len(over) > 0 && over[0] == k {
			over = over[1:]
			if !visit(k, p.pending[k]) {
				return
			}
			continue
		}
		if !fn(k, bytes.Clone(it.Value())) {
			return
		}
	}
	if err := it.Error(); err != nil {
		p.fail(fmt.Errorf("store %s: scan %q: %w", p.prefix, prefix, err))
		return
	}
	for _, k := range over {
		if !visit(k, p.pending[k]) {
			return
		}
	}
}

// upper is the least key above every key starting with lo.
func upper(lo []byte) []byte {
	u := bytes.Clone(lo)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] < 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil
}

// Err is the first read failure since the Part was made, or nil.
func (p *Part) Err() error { return p.err }

// Pending returns the writes not yet committed (a nil value is a delete).
func (p *Part) Pending() map[string][]byte { return p.pending }

// Mark is what a Part's committed state reflects.
type Mark struct {
	// Topic and TopicID name the changelog the state is a fold of (the
	// id changes when the topic is deleted and created again).
	Topic   string `json:"topic"`
	TopicID string `json:"topic_id"`
	// Next is the changelog offset to read next: everything before it
	// is in the state.
	Next int64 `json:"next"`
}

// Mark returns the committed Mark, or the zero Mark for a state that has
// none (empty, or never committed).
func (p *Part) Mark() (Mark, error) {
	if err := p.wait(); err != nil {
		return Mark{}, err
	}
	v, ok, err := p.get(p.markKey())
	if err != nil || !ok {
		return Mark{}, err
	}
	var m Mark
	if err := json.Unmarshal(v, &m); err != nil {
		return Mark{}, fmt.Errorf("store %s: mark: %w", p.prefix, err)
	}
	return m, nil
}

// Commit hands the pending writes and the Mark to a writer that puts them
// in one atomic batch, and returns at once: the stage decides its next
// transaction while the store writes this one (reads see the writes
// meanwhile). Call it only once the Kafka transaction that decided them
// has committed. It first waits for the previous commit's batch, and
// returns its error if it failed: the store is then behind, not wrong
// (the next restore replays more of the changelog).
func (p *Part) Commit(m Mark) error {
	if err := p.wait(); err != nil {
		return err
	}
	if p.err != nil {
		return p.err
	}
	writes := p.pending
	p.flushing, p.pending = writes, map[string][]byte{}
	done := make(chan error, 1)
	p.done = done
	p.d.flushing.Add(1)
	go func() {
		defer p.d.flushing.Done()
		done <- p.write(writes, m)
	}()
	return nil
}

// wait waits for the batch being written, if any, and takes its writes
// into the memo.
func (p *Part) wait() error {
	if p.done == nil {
		return nil
	}
	err := <-p.done
	p.done = nil
	for k, v := range p.flushing {
		p.remember(k, v)
	}
	p.flushing = nil
	return err
}

// Flush waits until everything committed is written.
func (p *Part) Flush() error { return p.wait() }

// write puts writes and the Mark in one batch. It only reads writes.
func (p *Part) write(writes map[string][]byte, m Mark) error {
	b := p.d.db.NewBatch()
	defer b.Close()
	for k, v := range writes {
		var err error
		if v == nil {
			err = b.Delete(p.key(k), nil)
		} else {
			err = b.Set(p.key(k), v, nil)
		}
		if err != nil {
			return fmt.Errorf("store %s: %w", p.prefix, err)
		}
	}
	mv, _ := json.Marshal(m)
	if err := b.Set(p.markKey(), mv, nil); err != nil {
		return fmt.Errorf("store %s: %w", p.prefix, err)
	}
	// NoSync: a killed process loses nothing (the OS holds the write); a
	// machine that crashes may lose the last batches, which leaves an older
	// but consistent state (data and Mark in one batch) that catches up
	// from the changelog tail.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store %s: commit: %w", p.prefix, err)
	}
	return nil
}

// Discard forgets the pending writes (the transaction aborted).
func (p *Part) Discard() { clear(p.pending) }

// Wipe deletes the Part's whole state, committed and pending, and its
// read failure.
func (p *Part) Wipe() error {
	_ = p.wait() // what it wrote is wiped too
	clear(p.pending)
	clear(p.memo)
	p.memoBytes, p.keys = 0, nil
	p.err = nil
	lo := []byte(p.prefix)
	if err := p.d.db.DeleteRange(lo, upper(lo), pebble.NoSync); err != nil {
		return fmt.Errorf("store %s: wipe: %w", p.prefix, err)
	}
	return nil
}

// quiet drops pebble's informational logging; errors reach the caller.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(string, ...any)          {}
func (quiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
