package store

import (
	"hash/maphash"
)

// filter is a Bloom filter of the keys a Part holds, in front of the
// store: most lookups of a stage are of keys that do not exist (a new
// movement's references, a transaction not yet posted), and the filter
// answers them without reading the store. It is built by one scan of the
// Part's keys (at its first lookup) and grows by rebuilding at twice the
// size when it holds more keys than it was made for. A delete leaves its
// key in the filter (a false positive costs one read).
type filter struct {
	bits []uint64
	n    int // keys added
	cap  int // keys it was sized for
}

// filterBitsPerKey gives about 1 % false positives with filterHashes.
const (
	filterBitsPerKey = 10
	filterHashes     = 7
	filterMinKeys    = 1 << 16
)

var filterSeed = maphash.MakeSeed()

func newFilter(keys int) *filter {
	c := max(filterMinKeys, keys*2)
	return &filter{bits: make([]uint64, (c*filterBitsPerKey+63)/64), cap: c}
}

func (f *filter) add(key string) {
	h := maphash.String(filterSeed, key)
	a, b := uint32(h), uint32(h>>32)|1
	m := uint32(len(f.bits) * 64)
	for i := range uint32(filterHashes) {
		bit := (a + i*b) % m
		f.bits[bit/64] |= 1 << (bit % 64)
	}
	f.n++
}

func (f *filter) mayContain(key string) bool {
	h := maphash.String(filterSeed, key)
	a, b := uint32(h), uint32(h>>32)|1
	m := uint32(len(f.bits) * 64)
	for i := range uint32(filterHashes) {
		bit := (a + i*b) % m
		if f.bits[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (f *filter) full() bool { return f.n > f.cap }
