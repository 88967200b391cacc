package auth

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Need says which scope a request needs; open is true for the routes that
// need no token:
//
//	GET /healthz, GET /metrics      probes and scrapers (metrics carry no IBAN, amount or secret)
//	/console/...                    static assets; the page asks for a token and sends it
//	POST /v1/bank/webhooks          banks authenticate with their own bearer tokens or signatures
//	GET /v1/whoami                  answers who a token is (401 without a valid one)
//
// Producer endpoints (POST /v1/loans, /v1/bank/transactions,
// /v1/bank/files) need ingest; any other GET or HEAD needs read; every
// other request (suspense assignment, alert redelivery, anything new)
// needs write: an unknown route is guarded, never open.
func Need(method, urlPath string) (scope Scope, open bool) {
	p := path.Clean("/" + urlPath)
	switch {
	case p == "/healthz" || p == "/metrics" || p == "/" || p == "/favicon.ico":
		if method == http.MethodGet || method == http.MethodHead {
			return "", true
		}
	case p == "/console" || strings.HasPrefix(p, "/console/"):
		if method == http.MethodGet || method == http.MethodHead {
			return "", true
		}
	case p == "/v1/bank/webhooks":
		return "", true
	}
	if method == http.MethodPost {
		switch p {
		case "/v1/loans", "/v1/bank/transactions", "/v1/bank/files":
			return Ingest, false
		}
	}
	if method == http.MethodGet || method == http.MethodHead {
		return Read, false
	}
	return Write, false
}

// WhoAmIPath is served by the middleware itself: the identity of the
// presented token, or {"auth":"off"} when access control is off. The
// console uses it to check a token before storing it.
const WhoAmIPath = "/v1/whoami"

type ctxKey struct{}

// FromContext is the identity the middleware authenticated, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Metrics counts authentication outcomes.
type Metrics struct {
	requests *prometheus.CounterVec
}

// NewMetrics registers recon_api_auth_total on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "recon_api_auth_total",
		Help: "Guarded API requests by authentication outcome: ok, unauthenticated, forbidden.",
	}, []string{"outcome"})}
	reg.MustRegister(m.requests)
	return m
}

func (m *Metrics) count(outcome string) {
	if m != nil {
		m.requests.WithLabelValues(outcome).Inc()
	}
}

// Middleware requires on every request the scope Need names. With no
// tokens configured it passes everything through (the caller logs that
// loudly). A refused request is logged with method, path, remote address
// and the token's name when known, never with the token. The
// Authorization header is removed before a guarded request goes on, so no
// handler downstream can log or forward it.
func (t *Tokens) Middleware(next http.Handler, log *slog.Logger, m *Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Clean("/"+r.URL.Path) == WhoAmIPath && r.Method == http.MethodGet {
			t.whoami(w, r)
			return
		}
		if !t.Enabled() {
			next.ServeHTTP(w, r)
			return
		}
		need, open := Need(r.Method, r.URL.Path)
		if open {
			next.ServeHTTP(w, r)
			return
		}
		id, ok := t.Authenticate(bearer(r))
		r.Header.Del("Authorization")
		switch {
		case !ok:
			m.count("unauthenticated")
			log.Warn("API request refused: no valid bearer token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="recon", error="invalid_token"`)
			reply(w, http.StatusUnauthorized, map[string]string{"error": "send Authorization: Bearer <token> (a token with scope " + string(need) + ")"})
		case !id.Has(need):
			m.count("forbidden")
			log.Warn("API request refused: token lacks scope", "token", id.Name, "need", need, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			reply(w, http.StatusForbidden, map[string]string{"error": "token " + id.Name + " lacks scope " + string(need)})
		default:
			m.count("ok")
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
		}
	})
}

func (t *Tokens) whoami(w http.ResponseWriter, r *http.Request) {
	if !t.Enabled() {
		reply(w, http.StatusOK, map[string]any{"auth": "off", "name": "anonymous", "scopes": []Scope{Read, Write, Ingest}})
		return
	}
	id, ok := t.Authenticate(bearer(r))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="recon", error="invalid_token"`)
		reply(w, http.StatusUnauthorized, map[string]string{"error": "unknown token"})
		return
	}
	reply(w, http.StatusOK, map[string]any{"auth": "on", "name": id.Name, "scopes": id.Scopes})
}

// bearer is the secret of an "Authorization: Bearer <secret>" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(secret)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
