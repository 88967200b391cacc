package ingest

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultSpoolQuotaBytes bounds the dead-letter spool directory.
const DefaultSpoolQuotaBytes = 1 << 30

// spool copies the size bytes of r to SpoolDir as <digest>.raw, first
// removing the oldest spooled files until it fits the quota, and returns
// its path ("" if it is not kept: larger than the quota, or the disk
// refused it).
func (in *Ingest) spool(digest string, r io.Reader, size int64) string {
	quota := in.SpoolQuotaBytes
	if quota <= 0 {
		quota = DefaultSpoolQuotaBytes
	}
	if size > quota {
		return ""
	}
	in.spoolMu.Lock() // one write (and eviction) at a time
	defer in.spoolMu.Unlock()
	if err := os.MkdirAll(in.SpoolDir, 0o700); err != nil {
		return ""
	}
	path := filepath.Join(in.SpoolDir, digest+".raw")
	if _, err := os.Stat(path); err == nil {
		return path // the same bytes, already kept
	}
	in.evictSpool(quota - size)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ""
	}
	_, err = io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return ""
	}
	return path
}

// evictSpool removes the oldest spooled files until at most keep bytes stay.
func (in *Ingest) evictSpool(keep int64) {
	entries, err := os.ReadDir(in.SpoolDir)
	if err != nil {
		return
	}
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".raw") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		files = append(files, file{filepath.Join(in.SpoolDir, e.Name()), info.Size(), info.ModTime()})
		total += info.Size()
	}
	slices.SortFunc(files, func(a, b file) int { return a.mod.Compare(b.mod) })
	for _, f := range files {
		if total <= keep {
			return
		}
		if os.Remove(f.path) == nil {
			total -= f.size
			in.m.spoolEvict.Inc()
		}
	}
}
