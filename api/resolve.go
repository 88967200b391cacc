package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

type resolveRequest struct {
	LoanID string `json:"loan_id"`
	Note   string `json:"note"`
	Actor  string `json:"actor"`
}

func decodeResolve(w http.ResponseWriter, r *http.Request, needLoan bool) (resolveRequest, bool) {
	var req resolveRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return req, false
	}
	if strings.TrimSpace(req.Note) == "" || needLoan && req.LoanID == "" {
		what := "a note saying why"
		if needLoan {
			what = "loan_id and " + what
		}
		reply(w, http.StatusBadRequest, map[string]string{"error": "give " + what})
		return req, false
	}
	if req.Actor == "" {
		req.Actor = "api"
	}
	return req, true
}

// dismiss closes a review item (an identity conflict) once a person has
// checked it: {"note": ..., "actor": ...}. It moves no money.
func (a *API) dismiss(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req, ok := decodeResolve(w, r, false)
	if !ok {
		return
	}
	p, ok := a.View.ItemPartition(id)
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"error": "no open suspense item " + id})
		return
	}
	c := recon.SuspenseCommand{Kind: recon.SuspenseDismiss, Key: schemas.SuspenseKey, ItemID: id, Rule: recon.RuleManual, Note: req.Note, Actor: req.Actor}
	a.publish(w, r, c, p, "dismiss-"+id, map[string]any{"accepted": true, "item": id})
}

// unassign takes an assignment of suspense item id (a transaction id) back
// from loan_id to suspense: {"loan_id": ..., "note": ..., "actor": ...}.
// The loan's partition books it or rejects it with the reason on the
// matches topic; the item then reappears in GET /v1/suspense.
func (a *API) unassign(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req, ok := decodeResolve(w, r, true)
	if !ok {
		return
	}
	c := recon.SuspenseCommand{Kind: recon.SuspenseUnassign, Key: a.View.RouteKey(req.LoanID), LoanID: req.LoanID, Transaction: recon.BankTransaction{ID: id},
		Rule: recon.RuleManualUnassign, Note: req.Note, Actor: req.Actor}
	a.publish(w, r, c, -1, "unassign-"+id+"-"+req.LoanID, map[string]any{"accepted": true, "item": id, "loan_id": req.LoanID})
}

// publish stores c on the routed topic (partition p, or by key when p < 0),
// where the matcher's partition that holds the item reads it as a routed
// record, and answers 202 once it is durable.
func (a *API) publish(w http.ResponseWriter, r *http.Request, c recon.SuspenseCommand, p int32, id string, answer map[string]any) {
	v, _ := json.Marshal(c)
	now := a.Now()
	ev := bus.Event{Topic: schemas.TopicRouted, Key: c.Key, Type: schemas.TypeRouted,
		ID: fmt.Sprintf("%s-%d", id, now.UnixNano()), Source: "recon/api", Time: now, Value: v, Partition: p}
	if err := a.Producer.ProduceSync(r.Context(), ev.Record(a.Kafka.Partitions)).FirstErr(); err != nil {
		reply(w, http.StatusServiceUnavailable, map[string]string{"error": "not stored, retry: " + err.Error()})
		return
	}
	reply(w, http.StatusAccepted, answer)
}
