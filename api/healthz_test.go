package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reconhq/recon/bus"
)

// /healthz tells a restore that cannot progress from one still starting:
// a stalled one names what it waits for and, in its error, the fix.
func TestHealthzNamesAStalledRestore(t *testing.T) {
	stalled := &bus.ErrReplayStalled{Topic: "recon.matcher-dedup-changelog.v1", Partition: 2, Reached: 41, Want: 97, Pending: 1, Stall: 2 * time.Minute}
	for _, tc := range []struct {
		name       string
		ready      error
		code       int
		status     string
		waitingFor map[string]any
		says       []string
	}{
		{"ready", nil, http.StatusOK, "ok", nil, nil},
		{"starting", errors.New("matcher: loading loans"), http.StatusServiceUnavailable, "starting", nil, []string{"loading loans"}},
		{"stalled", fmt.Errorf("matcher: route stage cannot restore: %w", stalled), http.StatusServiceUnavailable, "stalled",
			map[string]any{"topic": "recon.matcher-dedup-changelog.v1", "partition": 2.0, "reached_offset": 41.0, "last_stable_offset": 97.0, "partitions_pending": 1.0, "no_progress_for": "2m0s"},
			[]string{"route stage", "reached offset 41 of 97", "rebuild its data dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &API{View: NewView(nil), Ready: func() error { return tc.ready }}
			rec := httptest.NewRecorder()
			a.healthz(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != tc.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			var body struct {
				Status     string         `json:"status"`
				Error      string         `json:"error"`
				WaitingFor map[string]any `json:"waiting_for"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Status != tc.status {
				t.Errorf("status %q, want %q", body.Status, tc.status)
			}
			if fmt.Sprint(body.WaitingFor) != fmt.Sprint(tc.waitingFor) {
				t.Errorf("waiting_for %v, want %v", body.WaitingFor, tc.waitingFor)
			}
			for _, s := range tc.says {
				if !strings.Contains(body.Error, s) {
					t.Errorf("error %q does not say %q", body.Error, s)
				}
			}
		})
	}
}
