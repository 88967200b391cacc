package matcher

import (
	"sort"
	"strings"
)

// KV is where a stage keeps the state that grows with history (movements
// and their reference index, posted identities, past allocations): the
// service gives a store on disk that takes the writes of a transaction only
// once Kafka has committed it; tests and the in-memory default use MemKV.
// Reads see the stage's own writes at once. A KV reports an I/O failure by
// Err (and reads as empty meanwhile): the caller checks it before it
// commits, so the stages stay free of I/O errors.
type KV interface {
	Get(key string) ([]byte, bool)
	Set(key string, value []byte)
	Delete(key string)
	// Scan calls fn for each key starting with prefix, in key order,
	// until fn returns false.
	Scan(prefix string, fn func(key string, value []byte) bool)
	// Err is the first failure of the store underneath, or nil.
	Err() error
}

// MemKV is a KV in memory.
type MemKV map[string][]byte

// NewMemKV returns an empty MemKV.
func NewMemKV() MemKV { return MemKV{} }

// Get returns the value of key.
func (m MemKV) Get(key string) ([]byte, bool) { v, ok := m[key]; return v, ok }

// Set sets key to value (kept as given: callers do not reuse it).
func (m MemKV) Set(key string, value []byte) { m[key] = value }

// Delete removes key.
func (m MemKV) Delete(key string) { delete(m, key) }

// Scan visits the keys with prefix in order.
func (m MemKV) Scan(prefix string, fn func(key string, value []byte) bool) {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn(k, m[k]) {
			return
		}
	}
}

// Err is always nil.
func (MemKV) Err() error { return nil }
