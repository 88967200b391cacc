package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
)

// TestServiceRealReceiver runs the whole path over real loopback HTTP: the
// engine raises an edge, the dispatcher signs and posts it, an httptest
// receiver verifies it with Verify; then the API shows it and redelivers.
func TestServiceRealReceiver(t *testing.T) {
	got := make(chan http.Header, 10)
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify([]string{secretB}, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		got <- r.Header
	}))
	defer srv.Close()
	cfg := Config{
		AllowLoopback: true,
		BaseURL:       "http://recon.local",
		Endpoints:     []Endpoint{{Name: "ops", URL: srv.URL + "/hook", Secrets: []string{secretA, secretB}}},
		Rules:         []Rule{{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "100", Endpoint: "ops"}},
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	alerts, err := s.Observe(time.Now(), BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: decimal.NewFromInt(5)})
	if err != nil || len(alerts) != 1 {
		t.Fatalf("Observe = %v, %v", alerts, err)
	}
	id := alerts[0].ID
	if err := s.Enqueue(alerts...); err != nil { // as if read back from the alerts topic
		t.Fatal(err)
	}
	h := <-got
	if h.Get(HeaderWebhookID) != id || len(strings.Fields(h.Get(HeaderWebhookSignature))) != 2 {
		t.Errorf("headers %v", h)
	}
	waitReal(t, func() bool { return state(s.disp, id).State == DeliveryDelivered })

	api := s.Handler()
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/alerts", nil))
	var list struct {
		Alerts []struct {
			ID         string     `json:"id"`
			Value      string     `json:"value"`
			Deliveries []Delivery `json:"deliveries"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 {
		t.Fatalf("GET /v1/alerts: %d %s", rec.Code, rec.Body)
	}
	if len(list.Alerts) != 1 || list.Alerts[0].ID != id || list.Alerts[0].Value != "5" ||
		len(list.Alerts[0].Deliveries) != 1 || list.Alerts[0].Deliveries[0].Attempts[0].Status != 200 {
		t.Errorf("GET /v1/alerts: %s", rec.Body)
	}

	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/alerts/"+id+"/redeliver", nil))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("redeliver: %d %s", rec.Code, rec.Body)
	}
	if h := <-got; h.Get(HeaderWebhookID) != id {
		t.Errorf("redelivery id %q, want %q", h.Get(HeaderWebhookID), id)
	}
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/alerts/nope/redeliver", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("redeliver unknown: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/alerts/"+id, nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), id) {
		t.Errorf("GET one: %d %s", rec.Code, rec.Body)
	}
	mu.Lock()
	if len(bodies) != 2 || string(bodies[0]) != string(bodies[1]) {
		t.Errorf("bodies differ between deliveries of one alert")
	}
	mu.Unlock()

	waitReal(t, func() bool { return len(s.disp.Deliveries(id)[0].Attempts) == 2 })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "bank:") || strings.Contains(l.GetValue(), "5") {
					t.Errorf("metric %s label %s=%q carries an account or amount", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, n := range []string{"recon_alerts_fired_total", "recon_alert_deliveries_total", "recon_alert_delivery_duration_seconds"} {
		if !seen[n] {
			t.Errorf("metric %s missing", n)
		}
	}
}

// waitReal waits on real time for work done by real sockets; it polls
// with a bounded deadline rather than sleeping a fixed time.
func waitReal(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServiceReloadAndRestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.yaml")
	write := func(threshold string) {
		y := "endpoints:\n  - {name: ops, url: 'https://hooks.example.com/', secret: " + secretA + "}\n" +
			"rules:\n  - {name: low, kind: balance_below, account: 'bank:X', currency: EUR, threshold: '" + threshold + "', endpoint: ops}\n"
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("100")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := s.ReloadIfChanged(path); !changed || err != nil {
		t.Fatalf("first ReloadIfChanged = %v, %v", changed, err)
	}
	if changed, _ := s.ReloadIfChanged(path); changed {
		t.Error("unchanged file reloaded")
	}
	bal := func(v int64) int {
		a, _ := s.Observe(t0, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: decimal.NewFromInt(v)})
		return len(a)
	}
	if bal(50) != 1 {
		t.Fatal("no firing at 50 < 100")
	}
	write("40") // threshold lowered: 50 is fine now
	if changed, err := s.ReloadIfChanged(path); !changed || err != nil {
		t.Fatalf("ReloadIfChanged = %v, %v", changed, err)
	}
	if bal(50) != 1 {
		t.Error("reload kept the firing state but 50 >= 40 did not resolve")
	}
	if err := os.WriteFile(path, []byte("rules: [{name: x, kind: nope}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReloadIfChanged(path); err == nil || !strings.Contains(err.Error(), `rule "x"`) {
		t.Errorf("broken file: %v", err)
	}
	if bal(30) != 1 { // still the last good config
		t.Error("no firing at 30 < 40 after a refused reload")
	}
	st := s.State()
	s2, _ := New(cfg, Options{})
	s2.Reload(Config{Endpoints: cfg.Endpoints, Rules: []Rule{{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "40", Endpoint: "ops"}}})
	if err := s2.Restore(st); err != nil {
		t.Fatal(err)
	}
	if a, _ := s2.Observe(t0, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: decimal.NewFromInt(30)}); len(a) != 0 {
		t.Errorf("re-fired after restore: %+v", a)
	}
	if len(s2.Recent()) != 3 || len(s2.disp.Deliveries("")) != 3 {
		t.Errorf("restored %d alerts, %d deliveries", len(s2.Recent()), len(s2.disp.Deliveries("")))
	}
}
