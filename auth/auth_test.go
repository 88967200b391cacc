package auth

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	opsSecret      = "ops-secret-0123456789abcdef"
	viewerSecret   = "viewer-secret-0123456789ab"
	producerSecret = "producer-secret-0123456789"
)

func testTokens(t *testing.T) *Tokens {
	t.Helper()
	tok, err := Parse("ops:read+write:"+opsSecret+", viewer:read:"+viewerSecret+"\n# producers\nbank-feed:ingest:"+producerSecret, "test")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, spec, err string
		n               int
	}{
		{name: "empty", spec: "", n: 0},
		{name: "comments only", spec: "# nothing\n\n", n: 0},
		{name: "two", spec: "a:read:0123456789abcdef,b:write+read:fedcba9876543210", n: 2},
		{name: "secret with colon", spec: "a:read:0123456789:abcdef", n: 1},
		{name: "no secret", spec: "a:read", err: "want name:scope1+scope2:secret"},
		{name: "unknown scope", spec: "a:admin:0123456789abcdef", err: `unknown scope "admin"`},
		{name: "short secret", spec: "a:read:short", err: "secret must be 16..512 bytes, has 5"},
		{name: "duplicate name", spec: "a:read:0123456789abcdef\na:write:fedcba9876543210", err: "given twice"},
		{name: "same secret", spec: "a:read:0123456789abcdef,b:write:0123456789abcdef", err: "same secret"},
		{name: "bad name", spec: "a b:read:0123456789abcdef", err: "without spaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.spec, "test")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "0123456789abcdef") || strings.Contains(err.Error(), "short") && !strings.Contains(tc.err, "short") {
					t.Errorf("error repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tok.list) != tc.n || tok.Enabled() != (tc.n > 0) {
				t.Fatalf("got %d tokens (enabled %v), want %d", len(tok.list), tok.Enabled(), tc.n)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(f, []byte("# mounted secret\nfile-tok:read:0123456789abcdef0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := Load("env-tok:write:fedcba9876543210f", f)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tok.Names(), ","); got != "env-tok:write,file-tok:read" {
		t.Fatalf("names = %s", got)
	}
	if _, err := Load("", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing tokens file must be an error")
	}
}

func TestNeed(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		scope        Scope
		open         bool
	}{
		{"GET", "/healthz", "", true},
		{"GET", "/metrics", "", true},
		{"GET", "/console/", "", true},
		{"GET", "/console/app.js", "", true},
		{"POST", "/v1/bank/webhooks", "", true},
		{"POST", "/healthz", Write, false},
		{"POST", "/console/", Write, false},
		{"GET", "/v1/suspense", Read, false},
		{"GET", "/v1/loans/L-1", Read, false},
		{"GET", "/v1/loans/L-1/entries", Read, false},
		{"GET", "/v1/alerts", Read, false},
		{"GET", "/v1/breaks", Read, false},
		{"POST", "/v1/suspense/abc/assign", Write, false},
		{"POST", "/v1/alerts/a1/redeliver", Write, false},
		{"POST", "/v1/loans", Ingest, false},
		{"POST", "/v1/bank/transactions", Ingest, false},
		{"POST", "/v1/bank/files", Ingest, false},
		{"DELETE", "/v1/loans/L-1", Write, false},
		{"POST", "/v1/bank/webhooks/../../loans", Ingest, false},
		{"POST", "/v1/whatever-new", Write, false},
	} {
		scope, open := Need(tc.method, tc.path)
		if scope != tc.scope || open != tc.open {
			t.Errorf("Need(%s %s) = %q, %v; want %q, %v", tc.method, tc.path, scope, open, tc.scope, tc.open)
		}
	}
}

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var seenAuth []string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenAuth = append(seenAuth, r.Header.Get("Authorization"))
		name := "-"
		if id, ok := FromContext(r.Context()); ok {
			name = id.Name
		}
		w.Header().Set("X-Who", name)
		w.WriteHeader(http.StatusOK)
	})
	h := testTokens(t).Middleware(next, log, m)
	for _, tc := range []struct {
		method, path, header string
		code                 int
		who                  string
	}{
		{"GET", "/healthz", "", 200, "-"},
		{"GET", "/console/", "", 200, "-"},
		{"GET", "/v1/suspense", "", 401, ""},
		{"GET", "/v1/suspense", "Bearer wrong-secret-0123456789", 401, ""},
		{"GET", "/v1/suspense", "Basic " + opsSecret, 401, ""},
		{"GET", "/v1/suspense", "Bearer " + viewerSecret, 200, "viewer"},
		{"GET", "/v1/suspense", "bearer " + opsSecret, 200, "ops"},
		{"POST", "/v1/suspense/x/assign", "Bearer " + viewerSecret, 403, ""},
		{"POST", "/v1/suspense/x/assign", "Bearer " + opsSecret, 200, "ops"},
		{"POST", "/v1/loans", "Bearer " + opsSecret, 403, ""},
		{"POST", "/v1/loans", "Bearer " + producerSecret, 200, "bank-feed"},
		{"GET", "/v1/loans/L-1", "Bearer " + producerSecret, 403, ""},
		{"POST", "/v1/bank/webhooks", "Bearer bank-own-token", 200, "-"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code || rec.Code == 200 && rec.Header().Get("X-Who") != tc.who {
			t.Errorf("%s %s with %q: %d who=%q, want %d who=%q: %s", tc.method, tc.path, tc.header, rec.Code, rec.Header().Get("X-Who"), tc.code, tc.who, rec.Body)
		}
		if tc.code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.path)
		}
	}
	// guarded requests lose their Authorization header; webhooks keep theirs
	for i, a := range seenAuth {
		if a != "" && a != "Bearer bank-own-token" {
			t.Errorf("handler %d saw Authorization %q", i, a)
		}
	}
	for _, s := range []string{opsSecret, viewerSecret, producerSecret, "wrong-secret-0123456789"} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("a secret reached the log:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "token=viewer") {
		t.Errorf("a refusal should name the token: %s", logs.String())
	}
	var got dto.Metric
	if err := m.requests.WithLabelValues("unauthenticated").Write(&got); err != nil || got.GetCounter().GetValue() != 3 {
		t.Errorf("unauthenticated = %v (%v), want 3", got.GetCounter().GetValue(), err)
	}
}

func TestWhoAmI(t *testing.T) {
	next := http.NotFoundHandler()
	for _, tc := range []struct {
		name   string
		tokens *Tokens
		header string
		code   int
		want   string
	}{
		{"off", nil, "", 200, `"auth":"off"`},
		{"on, valid", testTokens(t), "Bearer " + opsSecret, 200, `"name":"ops","scopes":["read","write"]`},
		{"on, invalid", testTokens(t), "Bearer nope-nope-nope-nope", 401, "unknown token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", WhoAmIPath, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			tc.tokens.Middleware(next, slog.New(slog.DiscardHandler), nil).ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %s, want %d with %s", rec.Code, rec.Body, tc.code, tc.want)
			}
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAuthenticateOff(t *testing.T) {
	var nilTokens *Tokens
	if nilTokens.Enabled() {
		t.Fatal("nil tokens enabled")
	}
	if _, ok := nilTokens.Authenticate(opsSecret); ok {
		t.Fatal("nil tokens authenticated")
	}
	rec := httptest.NewRecorder()
	nilTokens.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }), slog.New(slog.DiscardHandler), nil).
		ServeHTTP(rec, httptest.NewRequest("POST", "/v1/suspense/x/assign", nil))
	if rec.Code != 204 {
		t.Fatalf("auth off: %d", rec.Code)
	}
}
