package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestServes(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	for _, tc := range []struct {
		path, contentType, contains string
		code                        int
		location                    string
	}{
		{path: "/console/", code: 200, contentType: "text/html", contains: `<script src="app.js" defer></script>`},
		{path: "/console/app.js", code: 200, contentType: "text/javascript", contains: "sessionStorage"},
		{path: "/console/style.css", code: 200, contentType: "text/css", contains: "dialog"},
		{path: "/console/missing.js", code: 404},
		{path: "/console", code: 302, location: "/console/"},
		{path: "/", code: 302, location: "/console/"},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("GET %s: %d, want %d", tc.path, rec.Code, tc.code)
			continue
		}
		if tc.location != "" && rec.Header().Get("Location") != tc.location {
			t.Errorf("GET %s: Location %q", tc.path, rec.Header().Get("Location"))
		}
		if tc.code != 200 {
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.contentType)
		}
		if !strings.Contains(rec.Body.String(), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
	}
}

// Nothing is loaded from outside: no absolute or protocol-relative URL in
// any asset, no inline script or style the CSP would block.
func TestSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["'](https?:|//)|url\(\s*["']?(https?:|//)|@import|fetch\(\s*["'](https?:|//)`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads from outside: %s", path, m)
		}
		if strings.HasSuffix(path, ".html") {
			if regexp.MustCompile(`<script>|<script [^>]*>[^<]+</script>|\sstyle="|\son[a-z]+="`).Match(b) {
				t.Errorf("%s has inline script, style or event handler (blocked by the CSP)", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every element app.js looks up by id exists in index.html or is made by
// app.js itself.
func TestIDsExist(t *testing.T) {
	js, _ := assets.ReadFile("assets/app.js")
	html, _ := assets.ReadFile("assets/index.html")
	made := map[string]bool{}
	for _, m := range regexp.MustCompile(`id="([a-z-]+)"`).FindAllSubmatch(html, -1) {
		made[string(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`id: "([a-z-]+)"`).FindAllSubmatch(js, -1) {
		made[string(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`\$\("([a-z-]+)"\)`).FindAllSubmatch(js, -1) {
		if !made[string(m[1])] {
			t.Errorf("app.js uses #%s, which nothing defines", m[1])
		}
	}
}
