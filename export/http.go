package export

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/reconhq/recon"
)

// Handler serves the exports over HTTP, reading the journal through Load
// on each request:
//
//	GET /v1/exports/fec?from=YYYY-MM-DD&to=YYYY-MM-DD   the FEC (text/tab-separated-values)
//	GET /v1/exports/gl.csv?from=&to=                    the general-ledger CSV
//	GET /v1/exports/trial-balance?at=YYYY-MM-DD[&format=csv]  JSON (amounts as strings), or CSV
type Handler struct {
	Load func(context.Context) ([]recon.Entry, error)
}

// Register adds the export routes to mux.
func (h Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/exports/fec", h.fec)
	mux.HandleFunc("GET /v1/exports/gl.csv", h.gl)
	mux.HandleFunc("GET /v1/exports/trial-balance", h.trial)
}

func (h Handler) lines(w http.ResponseWriter, r *http.Request) ([]Line, Period, bool) {
	p := Period{From: recon.Date(r.URL.Query().Get("from")), To: recon.Date(r.URL.Query().Get("to"))}
	if err := p.Validate(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, p, false
	}
	entries, err := h.Load(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return nil, p, false
	}
	lines, err := Lines(entries, p)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, p, false
	}
	return lines, p, true
}

func (h Handler) fec(w http.ResponseWriter, r *http.Request) {
	lines, p, ok := h.lines(w, r)
	if !ok {
		return
	}
	// Written to memory first: a refused line must not leave half a file
	// behind a 200.
	var b strings.Builder
	if err := WriteFEC(&b, lines); err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "text/tab-separated-values; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="FEC`+ymd(string(p.To))+`.txt"`)
	w.Write([]byte(b.String()))
}

func (h Handler) gl(w http.ResponseWriter, r *http.Request) {
	lines, _, ok := h.lines(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	WriteGL(w, lines)
}

func (h Handler) trial(w http.ResponseWriter, r *http.Request) {
	at := recon.Date(r.URL.Query().Get("at"))
	if at != "" && !at.Valid() {
		http.Error(w, fmt.Sprintf("at %q is not a date (YYYY-MM-DD)", at), http.StatusBadRequest)
		return
	}
	entries, err := h.Load(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	tb, err := Trial(entries, at)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		tb.WriteCSV(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(tb)
}
