package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"

	"github.com/reconhq/recon"
)

// Limits on HTTP bodies.
const (
	MaxJSONBytes = 8 << 20
	MaxFileBytes = 256 << 20
	MaxBatch     = 10000
)

// Register adds ingest's endpoints to mux.
func (in *Ingest) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/loans", in.handleLoans)
	mux.HandleFunc("POST /v1/borrowers", in.handleBorrowers)
	mux.HandleFunc("PUT /v1/loans/{loan_id}", in.handleAmend) // registry.go
	mux.HandleFunc("POST /v1/bank/transactions", in.handleTransactions)
	mux.HandleFunc("POST /v1/bank/files", in.handleFile)
	mux.HandleFunc("POST /v1/bank/webhooks", in.handleWebhook) // 503 until EnableWebhooks
}

func (in *Ingest) handleLoans(w http.ResponseWriter, r *http.Request) {
	var loans []recon.Loan
	if !in.decode(w, r, "loans", &loans) {
		return
	}
	err := in.Loans(r.Context(), loans)
	var be *BatchError
	switch {
	case errors.As(err, &be):
		stored := make([]string, len(be.Stored))
		for i, k := range be.Stored {
			stored[i] = loans[k].LoanID
		}
		in.reply(w, "loans", http.StatusMultiStatus, map[string]any{"accepted": len(stored), "loan_ids": stored, "refused": be.Refused})
	case err != nil:
		in.fail(w, r, "loans", err)
	default:
		in.reply(w, "loans", http.StatusAccepted, map[string]any{"accepted": len(loans)})
	}
}

func (in *Ingest) handleBorrowers(w http.ResponseWriter, r *http.Request) {
	var bs []recon.Borrower
	if !in.decode(w, r, "borrowers", &bs) {
		return
	}
	var be *BatchError
	switch err := in.Borrowers(r.Context(), bs); {
	case errors.As(err, &be):
		stored := make([]string, len(be.Stored))
		for i, k := range be.Stored {
			stored[i] = bs[k].ID
		}
		in.reply(w, "borrowers", http.StatusMultiStatus, map[string]any{"accepted": len(stored), "borrower_ids": stored, "refused": be.Refused})
	case err != nil:
		in.fail(w, r, "borrowers", err)
	default:
		in.reply(w, "borrowers", http.StatusAccepted, map[string]any{"accepted": len(bs)})
	}
}

func (in *Ingest) handleTransactions(w http.ResponseWriter, r *http.Request) {
	var txns []recon.BankTransaction
	if !in.decode(w, r, "transactions", &txns) {
		return
	}
	ids, err := in.Transactions(r.Context(), "api", txns)
	var be *BatchError
	switch {
	case errors.As(err, &be):
		stored := make([]string, len(be.Stored))
		for i, k := range be.Stored {
			stored[i] = ids[k]
		}
		in.reply(w, "transactions", http.StatusMultiStatus, map[string]any{"accepted": len(stored), "ids": stored, "refused": be.Refused})
	case err != nil:
		in.fail(w, r, "transactions", err)
	default:
		in.reply(w, "transactions", http.StatusAccepted, map[string]any{"accepted": len(ids), "ids": ids})
	}
}

func (in *Ingest) handleFile(w http.ResponseWriter, r *http.Request) {
	in.uploadsOnce.Do(func() { in.uploads = make(chan struct{}, in.Files.withDefaults(in.kafka).MaxUploads) })
	select {
	case in.uploads <- struct{}{}:
		defer func() { <-in.uploads }()
	default:
		w.Header().Set("Retry-After", "5")
		in.reply(w, "files", http.StatusTooManyRequests, map[string]string{"error": fmt.Sprintf("%d uploads in progress, the limit: retry later", cap(in.uploads))})
		return
	}
	f, digest, err := in.spoolUpload(w, r)
	if err != nil {
		in.fail(w, r, "files", err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "upload.xml"
	}
	s, err := in.FileFrom(r.Context(), path.Base(name), f, digest)
	if err != nil {
		in.fail(w, r, "files", err)
		return
	}
	code := http.StatusAccepted
	if s.Duplicate {
		code = http.StatusOK // recognised: nothing new to publish
	}
	in.reply(w, "files", code, s)
}

// BodyError is a request body that did not arrive whole: larger than the
// limit (413) or too slow for the server's read deadline (408).
type BodyError struct {
	Code   int
	Reason string
}

func (e *BodyError) Error() string { return e.Reason }

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var b bytes.Buffer
	if _, err := copyBody(&b, w, r, limit); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// copyBody copies a request body of at most limit bytes to dst.
func copyBody(dst io.Writer, w http.ResponseWriter, r *http.Request, limit int64) (int64, error) {
	tooLarge := &BodyError{Code: http.StatusRequestEntityTooLarge, Reason: fmt.Sprintf("body larger than the %d-byte limit", limit)}
	if r.ContentLength > limit {
		return 0, tooLarge
	}
	n, err := io.Copy(dst, http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return n, tooLarge
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return n, &BodyError{Code: http.StatusRequestTimeout, Reason: fmt.Sprintf("body not received in time (%d bytes arrived)", n)}
	case err != nil:
		return n, &InputError{Reason: "reading body: " + err.Error()}
	}
	return n, nil
}

// spoolUpload streams a file upload to a temporary file (in SpoolDir, or
// the system's temporary directory), hashing it on the way: an upload
// costs disk, not memory. The caller closes and removes the file.
func (in *Ingest) spoolUpload(w http.ResponseWriter, r *http.Request) (*os.File, string, error) {
	dir := in.SpoolDir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", err
		}
	}
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return nil, "", fmt.Errorf("keeping the upload: %w", err)
	}
	h := sha256.New()
	_, err = copyBody(io.MultiWriter(f, h), w, r, MaxFileBytes)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", err
	}
	return f, hex.EncodeToString(h.Sum(nil)), nil
}

// decode reads one JSON object or an array of them into out (a slice).
func (in *Ingest) decode(w http.ResponseWriter, r *http.Request, endpoint string, out any) bool {
	body, err := readBody(w, r, MaxJSONBytes)
	var be *BodyError
	if errors.As(err, &be) {
		in.fail(w, r, endpoint, err) // nothing whole to keep
		return false
	}
	if err == nil {
		err = decodeBatch(body, out)
	}
	if err != nil {
		_ = in.DeadLetter(r.Context(), endpoint, r.URL.Path, err.Error(), body)
		in.fail(w, r, endpoint, err)
		return false
	}
	return true
}

func countOf(v any) int {
	switch s := v.(type) {
	case *[]recon.Loan:
		return len(*s)
	case *[]recon.BankTransaction:
		return len(*s)
	case *[]recon.Borrower:
		return len(*s)
	}
	return 0
}

func (in *Ingest) fail(w http.ResponseWriter, r *http.Request, endpoint string, err error) {
	var ie *InputError
	var be *BodyError
	var ce *ConflictError
	switch {
	case errors.As(err, &ce):
		in.reply(w, endpoint, http.StatusConflict, map[string]string{"error": ce.Error()})
	case errors.As(err, &be):
		in.reply(w, endpoint, be.Code, map[string]string{"error": be.Reason})
	case errors.As(err, &ie):
		in.reply(w, endpoint, http.StatusBadRequest, map[string]string{"error": ie.Error()})
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		in.reply(w, endpoint, http.StatusServiceUnavailable, map[string]string{"error": "events not stored, retry: " + err.Error()})
	default:
		in.reply(w, endpoint, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}

func (in *Ingest) reply(w http.ResponseWriter, endpoint string, code int, v any) {
	in.m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
