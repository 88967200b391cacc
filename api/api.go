package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/auth"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// API serves the ledger's read model and suspense resolution.
type API struct {
	View  *View
	Kafka bus.Config
	// Producer publishes suspense assignments (acks=all).
	Producer *kgo.Client
	// Ready reports whether every component runs (GET /healthz).
	Ready func() error
	Now   func() time.Time
}

// Register adds the endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /v1/loans/{loan_id}", a.loan)
	mux.HandleFunc("GET /v1/borrowers/{borrower_id}", a.borrower)
	mux.HandleFunc("GET /v1/loans/{loan_id}/entries", a.loanEntries) // entries.go
	mux.HandleFunc("GET /v1/accounts/{account}/balance", a.balance)
	mux.HandleFunc("GET /v1/suspense", a.suspense)
	mux.HandleFunc("POST /v1/suspense/{id}/assign", a.assign)
	mux.HandleFunc("POST /v1/suspense/{id}/dismiss", a.dismiss)   // resolve.go
	mux.HandleFunc("POST /v1/suspense/{id}/unassign", a.unassign) // resolve.go
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	if err := a.Ready(); err != nil {
		NotReady(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"status": "ok", "journal_entries": a.View.Entries()})
}

// NotReady answers GET /healthz with 503 and what a component waits for.
// A restore that cannot progress (*bus.ErrReplayStalled) is "stalled", not
// "starting": the body names the topic, partition and offsets it waits
// for, and its error says the fix.
func NotReady(w http.ResponseWriter, err error) {
	var stalled *bus.ErrReplayStalled
	if !errors.As(err, &stalled) {
		reply(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "error": err.Error()})
		return
	}
	reply(w, http.StatusServiceUnavailable, map[string]any{"status": "stalled", "error": err.Error(), "waiting_for": map[string]any{
		"topic": stalled.Topic, "partition": stalled.Partition, "reached_offset": stalled.Reached,
		"last_stable_offset": stalled.Want, "partitions_pending": stalled.Pending, "no_progress_for": stalled.Stall.String(),
	}})
}

func (a *API) loan(w http.ResponseWriter, r *http.Request) {
	s, ok := a.View.Loan(r.PathValue("loan_id"))
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"error": "no loan " + r.PathValue("loan_id")})
		return
	}
	reply(w, http.StatusOK, s)
}

func (a *API) borrower(w http.ResponseWriter, r *http.Request) {
	s, ok := a.View.Borrower(r.PathValue("borrower_id"))
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"error": "no borrower " + r.PathValue("borrower_id")})
		return
	}
	reply(w, http.StatusOK, s)
}

func (a *API) balance(w http.ResponseWriter, r *http.Request) {
	var at time.Time
	if q := r.URL.Query().Get("at"); q != "" {
		t, err := time.Parse(time.RFC3339, q)
		if err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": "at must be RFC 3339, e.g. 2026-11-27T12:00:00Z"})
			return
		}
		at = t
	}
	account := r.PathValue("account")
	bals := a.View.Balances(account, at)
	if bals == nil {
		bals = nil
	}
	reply(w, http.StatusOK, map[string]any{"account": account, "at": at, "balances": bals})
}

// suspense serves GET /v1/suspense: open items oldest first, a page at a
// time (?limit=, default 1000, at most 10000; ?after= the previous page's
// next), optionally only those of one bank account (?account=IBAN), one
// currency (?currency=) or one kind (?kind=money|conflict). total and
// totals (parked money per currency) count every page.
func (a *API) suspense(w http.ResponseWriter, r *http.Request) {
	q, err := suspenseQueryOf(r.URL.Query())
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, q.page(a.View.Suspense(a.Now())))
}

type assignRequest struct {
	LoanID      string             `json:"loan_id"`
	Amount      *decimal.Decimal   `json:"amount"`
	Allocations []recon.Allocation `json:"allocations"`
	Note        string             `json:"note"`
	Actor       string             `json:"actor"`
}

// assign publishes the person's decision to the partition that holds the
// item; the matcher books it (or rejects it with the reason on the matches
// topic) inside its transaction.
func (a *API) assign(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req assignRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return
	}
	if req.LoanID != "" && len(req.Allocations) == 0 {
		var item *SuspenseItem
		for _, it := range a.View.Suspense(a.Now()) {
			if it.ID == id {
				item = &it
				break
			}
		}
		if item == nil {
			reply(w, http.StatusNotFound, map[string]string{"error": "no open suspense item " + id})
			return
		}
		req.Allocations = []recon.Allocation{{LoanID: req.LoanID, Amount: item.Amount}}
	}
	if len(req.Allocations) == 0 || strings.TrimSpace(req.Note) == "" {
		reply(w, http.StatusBadRequest, map[string]string{"error": "give loan_id or allocations, and a note saying why"})
		return
	}
	p, ok := a.View.ItemPartition(id)
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"error": "no open suspense item " + id})
		return
	}
	// The audit trail names who asked: the API token when access control is
	// on (a client cannot claim another name), else what the client says.
	if id, ok := auth.FromContext(r.Context()); ok {
		actor := "token:" + id.Name
		if req.Actor != "" {
			actor += " (" + req.Actor + ")"
		}
		req.Actor = actor
	} else if req.Actor == "" {
		req.Actor = "api"
	}
	c := recon.SuspenseCommand{Kind: recon.SuspenseAssign, Key: schemas.SuspenseKey, Transaction: recon.BankTransaction{ID: id}, ItemID: id,
		Rule: recon.RuleManual, Allocations: req.Allocations, Note: req.Note, Actor: req.Actor}
	a.publish(w, r, c, p, "assign-"+id, map[string]any{"accepted": true, "item": id, "allocations": req.Allocations})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
