package alerts

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/reconhq/recon"
)

// alertView is one alert with its deliveries, as GET /v1/alerts shows it.
type alertView struct {
	recon.Alert
	Deliveries []Delivery `json:"deliveries"`
}

// Handler serves the alerts API:
//
//	GET  /v1/alerts                  recent alerts, newest first, with deliveries
//	GET  /v1/alerts/{id}             one alert with its deliveries
//	POST /v1/alerts/{id}/redeliver   start a new delivery schedule (202)
//	GET  /v1/alerts/endpoints        endpoints disabled by a 410
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		recent := s.Recent()
		out := make([]alertView, 0, len(recent))
		for _, a := range recent {
			out = append(out, alertView{Alert: a, Deliveries: nonNil(s.disp.Deliveries(a.ID))})
		}
		writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
	})
	mux.HandleFunc("GET /v1/alerts/endpoints", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"disabled": s.disp.Disabled()})
	})
	mux.HandleFunc("GET /v1/alerts/{id}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.Alert(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such alert"})
			return
		}
		writeJSON(w, http.StatusOK, alertView{Alert: a, Deliveries: nonNil(s.disp.Deliveries(a.ID))})
	})
	mux.HandleFunc("POST /v1/alerts/{id}/redeliver", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		err := s.Redeliver(id)
		switch {
		case errors.Is(err, ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, ErrQueueFull):
			w.Header().Set("Retry-After", "60")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusAccepted, map[string]any{"alert": id, "deliveries": nonNil(s.disp.Deliveries(id))})
		}
	})
	return mux
}

func nonNil(d []Delivery) []Delivery {
	if d == nil {
		return []Delivery{}
	}
	return d
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
