// Package console is recon's web console: a plain HTML and JavaScript page,
// embedded in the binary and served at /console/, over the HTTP API — the
// suspense queue with evidence and age, assigning an item to a loan (with
// a confirmation step and a required audit note), a loan's schedule,
// payments, allocations and balance, alerts with their deliveries, and
// statement breaks. Nothing is loaded from outside: the Content Security
// Policy allows only the page's own files and its own API.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// csp allows the page's own scripts, styles and API calls, and nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the console's files under Prefix.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// Register mounts the console at Prefix, and redirects / and /console to it.
func Register(mux *http.ServeMux) {
	mux.Handle("GET "+Prefix, Handler())
	redirect := http.RedirectHandler(Prefix, http.StatusFound)
	mux.Handle("GET /console", redirect)
	mux.Handle("GET /{$}", redirect)
}
