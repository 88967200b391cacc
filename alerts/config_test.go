package alerts

import (
	"strings"
	"testing"
	"time"
)

const secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
const secretB = "whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQga2V5IQ=="

const sampleYAML = `
base_url: https://recon.example.com
delivery:
  max_elapsed: 24h
  timeout: 10s
endpoints:
  - name: ops
    url: https://hooks.example.com/recon
    secrets: [` + secretA + `, ` + secretB + `]
  - name: risk
    url: https://risk.example.com/hook
    secret: ` + secretA + `
    kinds: [return_rate]
rules:
  - name: low-balance
    kind: balance_below
    account: bank:DE89370400440532013000
    currency: EUR
    threshold: 10000.50
    hysteresis: "500"
    endpoint: ops
  - name: big-credit
    kind: large_credit
    currency: EUR
    threshold: "250000"
    endpoint: ops
  - name: dd-returns
    kind: return_rate
    threshold: 5
    window: 7d
  - name: no-statement
    kind: statement_missing
    account: DE89370400440532013000
    at: "09:00"
    timezone: Europe/Berlin
    endpoint: ops
`

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(sampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Rules[0].Threshold; got != "10000.50" {
		t.Errorf("threshold = %q, want the text as written", got)
	}
	if got := time.Duration(cfg.Rules[2].Window); got != 7*24*time.Hour {
		t.Errorf("window = %s", got)
	}
	c, _ := compile(cfg)
	if got := c.routes["dd-returns"]; len(got) != 1 || got[0] != "risk" {
		t.Errorf("dd-returns routes = %v, want [risk] (by kind)", got)
	}
	if got := c.routes["low-balance"]; len(got) != 1 || got[0] != "ops" {
		t.Errorf("low-balance routes = %v", got)
	}
	if len(c.endpoints["ops"].secrets) != 2 {
		t.Errorf("ops has %d secrets, want 2", len(c.endpoints["ops"].secrets))
	}
}

func TestParseConfigErrors(t *testing.T) {
	ep := "endpoints:\n  - {name: ops, url: 'https://hooks.example.com/', secret: " + secretA + "}\n"
	tests := []struct {
		name, yaml string
		want       []string // every substring must appear
	}{
		{"unknown kind", ep + "rules:\n  - {name: r1, kind: balance_sideways}\n", []string{`rule "r1"`, "kind", "balance_sideways"}},
		{"missing threshold", ep + "rules:\n  - {name: r1, kind: balance_below, account: a, currency: EUR}\n", []string{`rule "r1"`, "threshold", "required"}},
		{"missing account", ep + "rules:\n  - {name: r1, kind: balance_above, threshold: '1', currency: EUR}\n", []string{`rule "r1"`, "account"}},
		{"bad amount", ep + "rules:\n  - {name: r1, kind: large_credit, threshold: 1e9, currency: EUR}\n", []string{`rule "r1"`, "threshold", "1e9"}},
		{"negative hysteresis", ep + "rules:\n  - {name: r1, kind: suspense_amount, threshold: '5', hysteresis: '-1', currency: EUR}\n", []string{`rule "r1"`, "hysteresis", "negative"}},
		{"bad currency", ep + "rules:\n  - {name: r1, kind: large_credit, threshold: '5', currency: euro}\n", []string{`rule "r1"`, "currency"}},
		{"rate over 100", ep + "rules:\n  - {name: r1, kind: return_rate, threshold: '150', window: 1h}\n", []string{`rule "r1"`, "threshold", "percentage"}},
		{"no window", ep + "rules:\n  - {name: r1, kind: return_rate, threshold: '5'}\n", []string{`rule "r1"`, "window"}},
		{"bad at", ep + "rules:\n  - {name: r1, kind: statement_missing, account: a, at: '9am'}\n", []string{`rule "r1"`, "at", "HH:MM"}},
		{"bad timezone", ep + "rules:\n  - {name: r1, kind: statement_missing, account: a, at: '09:00', timezone: Mars/Olympus}\n", []string{`rule "r1"`, "timezone"}},
		{"unknown endpoint", ep + "rules:\n  - {name: r1, kind: suspense_age, age: 2d, endpoint: pager}\n", []string{`rule "r1"`, "endpoint", "pager"}},
		{"duplicate rule", ep + "rules:\n  - {name: r1, kind: suspense_age, age: 2d}\n  - {name: r1, kind: suspense_age, age: 3d}\n", []string{`rule "r1"`, "duplicate"}},
		{"bad duration", ep + "rules:\n  - {name: r1, kind: suspense_age, age: soon}\n", []string{"soon"}},
		{"unknown field", ep + "rules:\n  - {name: r1, kind: suspense_age, age: 2d, treshold: 5}\n", []string{"treshold"}},
		{"no secret", "endpoints:\n  - {name: ops, url: 'https://h.example.com/'}\n", []string{`endpoint "ops"`, "secrets", "required"}},
		{"short secret", "endpoints:\n  - {name: ops, url: 'https://h.example.com/', secret: abc}\n", []string{`endpoint "ops"`, "secrets[0]"}},
		{"bad whsec", "endpoints:\n  - {name: ops, url: 'https://h.example.com/', secret: 'whsec_!!!'}\n", []string{`endpoint "ops"`, "base64"}},
		{"ftp url", "endpoints:\n  - {name: ops, url: 'ftp://h.example.com/', secret: " + secretA + "}\n", []string{`endpoint "ops"`, "url", "scheme"}},
		{"metadata url", "endpoints:\n  - {name: ops, url: 'http://169.254.169.254/latest', secret: " + secretA + "}\n", []string{`endpoint "ops"`, "url", "forbidden"}},
		{"decimal loopback url", "endpoints:\n  - {name: ops, url: 'http://2130706433/', secret: " + secretA + "}\n", []string{`endpoint "ops"`, "url", "127.0.0.1"}},
		{"endpoint names unknown rule", "endpoints:\n  - {name: ops, url: 'https://h.example.com/', secret: " + secretA + ", rules: [ghost]}\n", []string{`endpoint "ops"`, "rules", "ghost"}},
		{"bad delivery", ep + "delivery: {max_attempts: -1}\n", []string{"delivery", "max_attempts"}},
		{"expected_overdue threshold without currency", ep + "rules:\n  - {name: r1, kind: expected_overdue, threshold: '100'}\n", []string{`rule "r1"`, "currency", "required"}},
		{"expected_overdue negative threshold", ep + "rules:\n  - {name: r1, kind: expected_overdue, threshold: '-1', currency: EUR}\n", []string{`rule "r1"`, "threshold", "negative"}},
		{"expected_overdue bad currency", ep + "rules:\n  - {name: r1, kind: expected_overdue, currency: eur}\n", []string{`rule "r1"`, "currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseConfigExpectedOverdue: the kind with no field, with its
// filters, and as an endpoint's kind.
func TestParseConfigExpectedOverdue(t *testing.T) {
	const y = `
endpoints:
  - name: treasury
    url: https://treasury.example.com/hook
    secret: ` + secretA + `
    kinds: [expected_overdue]
rules:
  - name: late-payments
    kind: expected_overdue
  - name: late-big-eur
    kind: expected_overdue
    currency: EUR
    threshold: "5000.00"
    subject: L-42
`
	cfg, err := ParseConfig([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	c, err := compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rule, currency, subject, threshold string
	}{
		{"late-payments", "", "", "0"},
		{"late-big-eur", "EUR", "L-42", "5000"},
	}
	for _, tt := range tests {
		r := c.byName[tt.rule]
		if r == nil || r.Kind != ExpectedOverdue || r.Currency != tt.currency || r.Subject != tt.subject || !r.threshold.Equal(dec(tt.threshold)) {
			t.Errorf("rule %s compiled to %+v, want kind expected_overdue, currency %q, subject %q, threshold %s", tt.rule, r, tt.currency, tt.subject, tt.threshold)
		}
		if got := c.routes[tt.rule]; len(got) != 1 || got[0] != "treasury" {
			t.Errorf("%s routes = %v, want [treasury] (by kind)", tt.rule, got)
		}
	}
}
