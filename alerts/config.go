package alerts

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"go.yaml.in/yaml/v3"
)

// Limits on what the configuration file may hold.
const (
	maxConfigBytes     = 1 << 20
	maxRules           = 1000
	maxEndpoints       = 100
	maxSecrets         = 10
	maxNameLen         = 64
	maxAmountDigits    = 30
	maxDeliveryElapsed = 7 * 24 * time.Hour
)

// Config is the alerts file (RECON_ALERTS_CONFIG): where alerts go and which
// conditions raise them. Amounts are strings so they stay exact.
type Config struct {
	// BaseURL prefixes the link to an alert in webhook bodies
	// ("<base>/v1/alerts/<id>").
	BaseURL string `yaml:"base_url" json:"base_url,omitempty"`
	// AllowLoopback lets endpoints on 127.0.0.0/8 and ::1 be dialled, for
	// local use and tests. Every other private range stays refused.
	AllowLoopback bool           `yaml:"allow_loopback" json:"allow_loopback,omitempty"`
	Delivery      DeliveryConfig `yaml:"delivery" json:"delivery"`
	Endpoints     []Endpoint     `yaml:"endpoints" json:"endpoints"`
	Rules         []Rule         `yaml:"rules" json:"rules"`
}

// DeliveryConfig bounds the retry schedule. Zero values take the defaults.
type DeliveryConfig struct {
	MaxAttempts    int      `yaml:"max_attempts" json:"max_attempts,omitempty"`       // default 60 (max_elapsed ends it first)
	MaxElapsed     Duration `yaml:"max_elapsed" json:"max_elapsed,omitempty"`         // default 24h
	Timeout        Duration `yaml:"timeout" json:"timeout,omitempty"`                 // per attempt, default 10s
	InitialBackoff Duration `yaml:"initial_backoff" json:"initial_backoff,omitempty"` // default 5s
	MaxBackoff     Duration `yaml:"max_backoff" json:"max_backoff,omitempty"`         // default 1h
	QueueSize      int      `yaml:"queue_size" json:"queue_size,omitempty"`           // pending deliveries, default 10000
	History        int      `yaml:"history" json:"history,omitempty"`                 // finished deliveries kept for dedup, default 100000
}

// Endpoint is one webhook receiver. It receives the alerts of the rules
// that name it in their endpoint field, plus those listed in Rules or
// whose kind is listed in Kinds.
type Endpoint struct {
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url" json:"url"`
	// Secret or Secrets sign deliveries; with several (rotation) every
	// delivery carries one signature per secret. "whsec_<base64>" secrets
	// are base64-decoded, others are used as bytes.
	Secret  string   `yaml:"secret" json:"-"`
	Secrets []string `yaml:"secrets" json:"-"`
	Rules   []string `yaml:"rules" json:"rules,omitempty"`
	Kinds   []Kind   `yaml:"kinds" json:"kinds,omitempty"`
}

// Kind is the kind of condition a rule watches.
type Kind string

const (
	BalanceBelow      Kind = "balance_below"      // account balance < threshold
	BalanceAbove      Kind = "balance_above"      // account balance > threshold
	LargeCredit       Kind = "large_credit"       // one credit >= threshold
	SuspenseAmount    Kind = "suspense_amount"    // suspense total >= threshold
	SuspenseAge       Kind = "suspense_age"       // oldest suspense item older than age
	ReturnRate        Kind = "return_rate"        // direct-debit returns/collections >= threshold % over window
	StatementMissing  Kind = "statement_missing"  // no statement for the expected date by time of day "at"
	StatementBreak    Kind = "statement_break"    // statement does not balance or does not chain
	InstalmentOverdue Kind = "instalment_overdue" // instalment unpaid "days" after its due date
	ExpectedOverdue   Kind = "expected_overdue"   // a collection or disbursement recon instructed is not settled within its window
)

var kinds = []Kind{BalanceBelow, BalanceAbove, LargeCredit, SuspenseAmount, SuspenseAge,
	ReturnRate, StatementMissing, StatementBreak, InstalmentOverdue, ExpectedOverdue}

// Rule is one alert condition. Which fields matter depends on Kind; see
// the README section in the package doc.
type Rule struct {
	Name     string `yaml:"name" json:"name"`
	Kind     Kind   `yaml:"kind" json:"kind"`
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// Threshold is an amount (balance, credit, suspense kinds), a
	// percentage (return_rate) or a tolerance (statement_break, default 0);
	// for instalment_overdue the outstanding amount below which an
	// instalment is not reported (default 0); for expected_overdue the
	// smallest amount reported (default 0, needs currency).
	Threshold string `yaml:"threshold" json:"threshold,omitempty"`
	// Currency: the currency an amount rule watches; for suspense_age and
	// expected_overdue an optional filter.
	Currency string `yaml:"currency" json:"currency,omitempty"`
	// Hysteresis is how far past the threshold a value must come back
	// before the alert resolves (same unit as Threshold).
	Hysteresis string `yaml:"hysteresis" json:"hysteresis,omitempty"`
	// Account: the ledger/bank account a balance rule watches (required),
	// the bank account a statement rule watches (required for
	// statement_missing, optional filter for statement_break and
	// large_credit).
	Account string `yaml:"account" json:"account,omitempty"`
	// Subject optionally restricts instalment_overdue and expected_overdue
	// to one loan id.
	Subject  string   `yaml:"subject" json:"subject,omitempty"`
	Window   Duration `yaml:"window" json:"window,omitempty"`       // return_rate
	MinCount int      `yaml:"min_count" json:"min_count,omitempty"` // return_rate: collections needed in window, default 10
	Age      Duration `yaml:"age" json:"age,omitempty"`             // suspense_age
	At       string   `yaml:"at" json:"at,omitempty"`               // statement_missing: "HH:MM"
	Timezone string   `yaml:"timezone" json:"timezone,omitempty"`   // statement_missing, instalment_overdue; default UTC
	// Days: statement_missing, the statement dated D is due on D+Days
	// (default 1); instalment_overdue, days after the due date (default 0).
	Days int `yaml:"days" json:"days,omitempty"`
}

// Duration is a time.Duration written "90s", "15m", "24h" or "7d".
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go prints it.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("duration %q: want <n>d with 0 <= n <= 3650", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	return v, nil
}

// LoadConfig reads and validates the alerts file at path.
func LoadConfig(path string) (Config, error) {
	b, err := readLimited(path)
	if err != nil {
		return Config{}, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigBytes)
	}
	return b, nil
}

// ParseConfig decodes YAML (unknown fields are errors) and validates it.
func ParseConfig(b []byte) (Config, error) {
	if len(b) > maxConfigBytes {
		return Config{}, fmt.Errorf("alerts config larger than %d bytes", maxConfigBytes)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("alerts config: %w", err)
	}
	if _, err := compile(cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks cfg as ParseConfig does, for configs built in code.
func (cfg Config) Validate() error {
	_, err := compile(cfg)
	return err
}

// withDefaults fills the delivery defaults.
func (d DeliveryConfig) withDefaults() DeliveryConfig {
	def := func(v *Duration, x time.Duration) {
		if *v == 0 {
			*v = Duration(x)
		}
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = 60
	}
	if d.QueueSize == 0 {
		d.QueueSize = 10000
	}
	if d.History == 0 {
		d.History = 100000
	}
	def(&d.MaxElapsed, 24*time.Hour)
	def(&d.Timeout, 10*time.Second)
	def(&d.InitialBackoff, 5*time.Second)
	def(&d.MaxBackoff, time.Hour)
	return d
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// FieldError names the rule or endpoint and the field a config error is in.
type FieldError struct {
	Where string // `rule "low-balance"`, `endpoint "ops"`, "delivery"
	Field string
	Err   error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("alerts config: %s: %s: %v", e.Where, e.Field, e.Err)
}
func (e *FieldError) Unwrap() error { return e.Err }

// rule is a validated Rule with parsed values.
type rule struct {
	Rule
	threshold  decimal.Decimal
	hysteresis decimal.Decimal
	window     time.Duration
	age        time.Duration
	atMinutes  int
	loc        *time.Location
}

// endpoint is a validated Endpoint with decoded secrets.
type endpoint struct {
	Endpoint
	url     *url.URL
	secrets [][]byte
}

type compiled struct {
	cfg       Config
	delivery  DeliveryConfig
	rules     []*rule
	byName    map[string]*rule
	endpoints map[string]*endpoint
	routes    map[string][]string // rule name -> endpoint names
}

func compile(cfg Config) (*compiled, error) {
	var errs []error
	fail := func(where, field string, format string, args ...any) {
		errs = append(errs, &FieldError{Where: where, Field: field, Err: fmt.Errorf(format, args...)})
	}
	c := &compiled{cfg: cfg, byName: map[string]*rule{}, endpoints: map[string]*endpoint{}, routes: map[string][]string{}}
	if len(cfg.Rules) > maxRules {
		fail("config", "rules", "%d rules, limit %d", len(cfg.Rules), maxRules)
	}
	if len(cfg.Endpoints) > maxEndpoints {
		fail("config", "endpoints", "%d endpoints, limit %d", len(cfg.Endpoints), maxEndpoints)
	}
	if cfg.BaseURL != "" {
		if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			fail("config", "base_url", "want an http(s) URL, got %q", cfg.BaseURL)
		}
	}
	c.delivery = validateDelivery(cfg.Delivery, fail)
	for i, e := range cfg.Endpoints {
		where := fmt.Sprintf("endpoint %q", e.Name)
		if e.Name == "" {
			where = fmt.Sprintf("endpoint #%d", i+1)
		}
		ep := validateEndpoint(e, where, cfg.AllowLoopback, fail)
		if _, dup := c.endpoints[e.Name]; dup {
			fail(where, "name", "duplicate endpoint name")
		}
		c.endpoints[e.Name] = ep
	}
	for i, r := range cfg.Rules {
		where := fmt.Sprintf("rule %q", r.Name)
		if r.Name == "" {
			where = fmt.Sprintf("rule #%d", i+1)
		}
		cr := validateRule(r, where, fail)
		if _, dup := c.byName[r.Name]; dup {
			fail(where, "name", "duplicate rule name")
		}
		if r.Endpoint != "" {
			if _, ok := c.endpoints[r.Endpoint]; !ok {
				fail(where, "endpoint", "no endpoint named %q", r.Endpoint)
			}
		}
		c.byName[r.Name] = cr
		c.rules = append(c.rules, cr)
	}
	for _, e := range cfg.Endpoints {
		for _, rn := range e.Rules {
			if _, ok := c.byName[rn]; !ok {
				fail(fmt.Sprintf("endpoint %q", e.Name), "rules", "no rule named %q", rn)
			}
		}
	}
	for _, r := range c.rules {
		for _, e := range cfg.Endpoints {
			if r.Endpoint == e.Name || slices.Contains(e.Rules, r.Name) || slices.Contains(e.Kinds, r.Kind) {
				c.routes[r.Name] = append(c.routes[r.Name], e.Name)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func validateDelivery(d DeliveryConfig, fail func(string, string, string, ...any)) DeliveryConfig {
	if d.MaxAttempts < 0 || d.MaxAttempts > 1000 {
		fail("delivery", "max_attempts", "%d, want 1..1000", d.MaxAttempts)
	}
	if d.QueueSize < 0 || d.QueueSize > 1_000_000 {
		fail("delivery", "queue_size", "%d, want 1..1000000", d.QueueSize)
	}
	if d.History < 0 || d.History > 10_000_000 {
		fail("delivery", "history", "%d, want 1..10000000", d.History)
	}
	for field, v := range map[string]Duration{"max_elapsed": d.MaxElapsed, "timeout": d.Timeout,
		"initial_backoff": d.InitialBackoff, "max_backoff": d.MaxBackoff} {
		if v < 0 || time.Duration(v) > maxDeliveryElapsed {
			fail("delivery", field, "%s, want 0..%s", time.Duration(v), maxDeliveryElapsed)
		}
	}
	return d.withDefaults()
}

func validateEndpoint(e Endpoint, where string, allowLoopback bool, fail func(string, string, string, ...any)) *endpoint {
	ep := &endpoint{Endpoint: e}
	if !nameRE.MatchString(e.Name) || len(e.Name) > maxNameLen {
		fail(where, "name", "want 1-%d characters of [A-Za-z0-9_.-], got %q", maxNameLen, e.Name)
	}
	u, err := checkURL(e.URL, allowLoopback)
	if err != nil {
		fail(where, "url", "%v", err)
	}
	ep.url = u
	secrets := e.Secrets
	if e.Secret != "" {
		secrets = append([]string{e.Secret}, secrets...)
	}
	if len(secrets) == 0 {
		fail(where, "secrets", "at least one secret is required")
	}
	if len(secrets) > maxSecrets {
		fail(where, "secrets", "%d secrets, limit %d", len(secrets), maxSecrets)
	}
	for i, s := range secrets {
		k, err := secretKey(s)
		if err != nil {
			fail(where, fmt.Sprintf("secrets[%d]", i), "%v", err)
			continue
		}
		ep.secrets = append(ep.secrets, k)
	}
	for i, k := range e.Kinds {
		if !slices.Contains(kinds, k) {
			fail(where, fmt.Sprintf("kinds[%d]", i), "unknown kind %q", k)
		}
	}
	return ep
}

// secretKey returns the HMAC key of a configured secret.
func secretKey(s string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(s, "whsec_"); ok {
		k, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("whsec_ secret is not base64: %w", err)
		}
		if len(k) < 24 || len(k) > 64 {
			return nil, fmt.Errorf("whsec_ secret decodes to %d bytes, want 24..64", len(k))
		}
		return k, nil
	}
	if len(s) < 24 || len(s) > 256 {
		return nil, fmt.Errorf("secret has %d bytes, want 24..256", len(s))
	}
	return []byte(s), nil
}

func parseAmount(s string) (decimal.Decimal, error) {
	if len(s) > maxAmountDigits || strings.ContainsAny(s, "eE") {
		return decimal.Decimal{}, fmt.Errorf("%q: want a plain decimal of at most %d characters", s, maxAmountDigits)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%q: %w", s, err)
	}
	return d, nil
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

func validateRule(r Rule, where string, fail func(string, string, string, ...any)) *rule {
	cr := &rule{Rule: r, loc: time.UTC}
	if !nameRE.MatchString(r.Name) || len(r.Name) > maxNameLen {
		fail(where, "name", "want 1-%d characters of [A-Za-z0-9_.-], got %q", maxNameLen, r.Name)
	}
	if !slices.Contains(kinds, r.Kind) {
		fail(where, "kind", "unknown kind %q (want one of %v)", r.Kind, kinds)
		return cr
	}
	amount := func(field, s string, required bool) decimal.Decimal {
		if s == "" {
			if required {
				fail(where, field, "required for %s", r.Kind)
			}
			return decimal.Zero
		}
		d, err := parseAmount(s)
		if err != nil {
			fail(where, field, "%v", err)
		} else if field == "hysteresis" && d.IsNegative() {
			fail(where, field, "%s is negative", s)
		}
		return d
	}
	need := func(field string, ok bool) {
		if !ok {
			fail(where, field, "required for %s", r.Kind)
		}
	}
	cr.hysteresis = amount("hysteresis", r.Hysteresis, false)
	if r.Currency != "" && !currencyRE.MatchString(r.Currency) {
		fail(where, "currency", "want an ISO 4217 code, got %q", r.Currency)
	}
	if r.Timezone != "" {
		loc, err := time.LoadLocation(r.Timezone)
		if err != nil {
			fail(where, "timezone", "%v", err)
		} else {
			cr.loc = loc
		}
	}
	if r.Days < 0 || r.Days > 366 {
		fail(where, "days", "%d, want 0..366", r.Days)
	}
	switch r.Kind {
	case BalanceBelow, BalanceAbove:
		cr.threshold = amount("threshold", r.Threshold, true)
		need("account", r.Account != "")
		need("currency", r.Currency != "")
	case LargeCredit, SuspenseAmount:
		cr.threshold = amount("threshold", r.Threshold, true)
		need("currency", r.Currency != "")
		if cr.threshold.Sign() <= 0 && r.Threshold != "" {
			fail(where, "threshold", "%s, want > 0", r.Threshold)
		}
	case SuspenseAge:
		cr.age = time.Duration(r.Age)
		need("age", cr.age > 0)
	case ReturnRate:
		cr.threshold = amount("threshold", r.Threshold, true)
		if cr.threshold.Sign() <= 0 || cr.threshold.GreaterThan(decimal.NewFromInt(100)) {
			fail(where, "threshold", "%q, want a percentage in (0, 100]", r.Threshold)
		}
		cr.window = time.Duration(r.Window)
		need("window", cr.window >= time.Minute)
		if r.MinCount < 0 {
			fail(where, "min_count", "%d is negative", r.MinCount)
		}
		if cr.MinCount == 0 {
			cr.MinCount = 10
		}
	case StatementMissing:
		need("account", r.Account != "")
		need("at", r.At != "")
		if r.At != "" {
			t, err := time.Parse("15:04", r.At)
			if err != nil {
				fail(where, "at", "want HH:MM, got %q", r.At)
			}
			cr.atMinutes = t.Hour()*60 + t.Minute()
		}
		if cr.Days == 0 {
			cr.Days = 1
		}
	case StatementBreak:
		cr.threshold = amount("threshold", r.Threshold, false)
	case InstalmentOverdue:
		cr.threshold = amount("threshold", r.Threshold, false)
	case ExpectedOverdue:
		cr.threshold = amount("threshold", r.Threshold, false)
		if cr.threshold.IsNegative() {
			fail(where, "threshold", "%s is negative", r.Threshold)
		}
		if r.Threshold != "" {
			// amounts in different currencies do not compare
			need("currency", r.Currency != "")
		}
	}
	return cr
}
