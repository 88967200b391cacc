package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The spool keeps at most its quota: the oldest files go first, counted.
func TestSpoolQuota(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	in.SpoolDir = t.TempDir()
	in.SpoolQuotaBytes = 700 << 10
	ctx := context.Background()
	var paths []string
	for i := range 3 {
		raw := bytes.Repeat([]byte{byte('a' + i)}, 300<<10)
		if err := in.DeadLetter(ctx, "file", "f.xml", "refused", raw); err != nil {
			t.Fatal(err)
		}
		matches, _ := filepath.Glob(filepath.Join(in.SpoolDir, "*.raw"))
		for _, m := range matches {
			if !slices.Contains(paths, m) {
				paths = append(paths, m)
				at := time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC) // a clear age order
				if err := os.Chtimes(m, at, at); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(paths) != 3 {
		t.Fatalf("%d files spooled, want 3", len(paths))
	}
	if _, err := os.Stat(paths[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the oldest spooled file is still there: %v", err)
	}
	for _, p := range paths[1:] {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a newer spooled file is gone: %v", err)
		}
	}
	if n := evictions(t, in); n != 1 {
		t.Errorf("evictions counted %v, want 1", n)
	}
	// larger than the whole quota: not spooled, nothing evicted
	if err := in.DeadLetter(ctx, "file", "g.xml", "refused", bytes.Repeat([]byte("z"), 800<<10)); err != nil {
		t.Fatal(err)
	}
	if n := evictions(t, in); n != 1 {
		t.Errorf("evictions counted %v after an input over the quota, want 1", n)
	}
}

func evictions(t *testing.T, in *Ingest) float64 {
	var m dto.Metric
	if err := in.m.spoolEvict.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Beyond MaxUploads files at once, an upload is answered 429 with
// Retry-After, before its body is read.
func TestUploadsAreCapped(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	in.Files.MaxUploads = 1
	mux := http.NewServeMux()
	in.Register(mux)
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/bank/files", pr))
		done <- rec.Code
	}()
	if _, err := pw.Write([]byte("<")); err != nil { // returns once the first upload reads its body
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/bank/files", bytes.NewReader(camtWith("CAP-1", 1))))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("second upload: %d, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	pw.Close()
	if code := <-done; code != http.StatusBadRequest {
		t.Errorf("first upload (\"<\"): %d, want 400", code)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/bank/files", bytes.NewReader(camtWith("CAP-1", 1))))
	if rec.Code != http.StatusAccepted {
		t.Errorf("upload after the first ended: %d, want 202", rec.Code)
	}
}
