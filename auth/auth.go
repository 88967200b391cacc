// Package auth decides who may call recon's HTTP API and console: bearer
// tokens with scopes (read, write, ingest), kept only as SHA-256 hashes and
// compared in constant time, and the middleware that requires the scope
// each route needs. Bank webhooks are not its business: they carry their
// own authentication (ingest's bearer tokens or Standard Webhooks
// signatures). A token never reaches a log: only its name does.
package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Scope is one right a token grants.
type Scope string

// The scopes. They do not imply each other: a console user who assigns
// suspense items needs "read+write".
const (
	Read   Scope = "read"   // every GET of the API and the console's data
	Write  Scope = "write"  // decisions by people: suspense assignment, alert redelivery
	Ingest Scope = "ingest" // producers: POST /v1/loans, /v1/bank/transactions, /v1/bank/files
)

// Limits on the configuration, which comes from outside.
const (
	MaxTokens      = 256
	MinSecretBytes = 16
	MaxSecretBytes = 512
	MaxNameBytes   = 64
	maxFileBytes   = 1 << 20
)

// token is one configured token: its name, scopes and the hash of its secret.
type token struct {
	name   string
	scopes map[Scope]bool
	hash   [sha256.Size]byte
}

// Tokens is the set of accepted tokens. The zero value (and nil) accepts
// none and means access control is off.
type Tokens struct {
	list []token
}

// Identity is who a request authenticated as.
type Identity struct {
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
}

// ErrUnauthenticated is a missing or unknown token; ErrForbidden a known
// token without the scope the route needs.
var (
	ErrUnauthenticated = errors.New("missing or unknown bearer token")
	ErrForbidden       = errors.New("token lacks the scope this request needs")
)

// Parse reads tokens as "name:scope1+scope2:secret", separated by commas
// or newlines; blank lines and lines starting with # are skipped. where
// names the source in errors (never the secret itself).
func Parse(spec, where string) (*Tokens, error) {
	t := &Tokens{}
	sc := bufio.NewScanner(strings.NewReader(spec))
	sc.Buffer(make([]byte, 0, 4096), maxFileBytes)
	line := 0
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for i, field := range strings.Split(text, ",") {
			field = strings.TrimSpace(field)
			if field == "" {
				continue
			}
			tok, err := parseOne(field)
			if err != nil {
				return nil, fmt.Errorf("%s line %d token %d: %w", where, line, i+1, err)
			}
			if names[tok.name] {
				return nil, fmt.Errorf("%s line %d: token name %q given twice", where, line, tok.name)
			}
			if hashes[tok.hash] {
				return nil, fmt.Errorf("%s line %d: token %q has the same secret as another token", where, line, tok.name)
			}
			names[tok.name], hashes[tok.hash] = true, true
			if len(t.list) == MaxTokens {
				return nil, fmt.Errorf("%s: more than %d tokens", where, MaxTokens)
			}
			t.list = append(t.list, tok)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s line %d: %w", where, line+1, err)
	}
	return t, nil
}

// parseOne reads "name:scopes:secret". Its errors name the part that is
// wrong but never repeat the secret.
func parseOne(field string) (token, error) {
	name, rest, ok := strings.Cut(field, ":")
	scopes, secret, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return token{}, errors.New(`want name:scope1+scope2:secret (scopes: read, write, ingest)`)
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxNameBytes || strings.ContainsAny(name, " \t\"'") {
		return token{}, fmt.Errorf("name must be 1..%d characters without spaces or quotes", MaxNameBytes)
	}
	tok := token{name: name, scopes: map[Scope]bool{}}
	for _, s := range strings.Split(scopes, "+") {
		switch sc := Scope(strings.TrimSpace(s)); sc {
		case Read, Write, Ingest:
			tok.scopes[sc] = true
		default:
			return token{}, fmt.Errorf("token %q: unknown scope %q (read, write, ingest)", name, sc)
		}
	}
	if n := len(secret); n < MinSecretBytes || n > MaxSecretBytes {
		return token{}, fmt.Errorf("token %q: secret must be %d..%d bytes, has %d", name, MinSecretBytes, MaxSecretBytes, n)
	}
	tok.hash = sha256.Sum256([]byte(secret))
	return tok, nil
}

// Load combines the tokens given inline (spec, e.g. RECON_API_TOKENS) and
// in a file (e.g. RECON_API_TOKENS_FILE, a mounted secret); either may be
// empty.
func Load(spec, file string) (*Tokens, error) {
	all := spec
	if file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("API tokens file: %w", err)
		}
		if fi.Size() > maxFileBytes {
			return nil, fmt.Errorf("API tokens file %s: larger than %d bytes", file, maxFileBytes)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("API tokens file: %w", err)
		}
		all += "\n" + string(b)
	}
	t, err := Parse(all, "API tokens")
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Enabled reports whether any token is configured; without one, access
// control is off.
func (t *Tokens) Enabled() bool { return t != nil && len(t.list) > 0 }

// Names lists the configured tokens' names with their scopes, for the
// start-up log line.
func (t *Tokens) Names() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.list))
	for _, tok := range t.list {
		var scopes []string
		for _, s := range scopeList(tok.scopes) {
			scopes = append(scopes, string(s))
		}
		out = append(out, tok.name+":"+strings.Join(scopes, "+"))
	}
	return out
}

// Authenticate finds the token whose secret is presented. Every stored
// hash is compared, in constant time, so the time taken says nothing about
// which token (or how much of one) matched.
func (t *Tokens) Authenticate(secret string) (Identity, bool) {
	if t == nil || secret == "" || len(secret) > MaxSecretBytes {
		return Identity{}, false
	}
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range t.list {
		if subtle.ConstantTimeCompare(h[:], t.list[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, false
	}
	tok := t.list[found]
	return Identity{Name: tok.name, Scopes: scopeList(tok.scopes)}, true
}

// Has reports whether the identity holds scope s.
func (id Identity) Has(s Scope) bool {
	for _, x := range id.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

func scopeList(m map[Scope]bool) []Scope {
	out := make([]Scope, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
