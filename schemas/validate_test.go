package schemas_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// validator checks JSON values against the subset of JSON Schema draft
// 2020-12 the generator emits; a keyword outside it is an error, so the
// generator cannot emit what is not checked here. The Python example's test
// validates with the jsonschema package as well (examples/python).
type validator struct {
	root map[string]any
}

// loadValidator reads schemas/json/<topic>.schema.json.
func loadValidator(t *testing.T, topic string) *validator {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(schemaDir, topic+".schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", topic, err)
	}
	return &validator{root: root}
}

// validate returns every violation of the record b, each with its JSON
// pointer.
func (v *validator) validate(b []byte) []string {
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	var errs []string
	v.check(v.root, doc, "", &errs)
	return errs
}

// annotations are keywords that do not constrain a value.
var annotations = map[string]bool{"$schema": true, "$defs": true, "title": true, "description": true, "x-kafka-key": true, "x-ce-type": true}

var patterns = map[string]*regexp.Regexp{}

func (v *validator) check(s map[string]any, val any, at string, errs *[]string) {
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	for k, kw := range s {
		switch k {
		case "$ref":
			name, ok := strings.CutPrefix(kw.(string), "#/$defs/")
			def, found := v.root["$defs"].(map[string]any)[name].(map[string]any)
			if !ok || !found {
				fail("unresolvable $ref %v", kw)
				continue
			}
			v.check(def, val, at, errs)
		case "type":
			if !hasType(val, kw.(string)) {
				fail("%s is not of type %s", short(val), kw)
			}
		case "properties":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			for name, ps := range kw.(map[string]any) {
				if pv, ok := obj[name]; ok {
					v.check(ps.(map[string]any), pv, at+"/"+name, errs)
				}
			}
		case "required":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			for _, r := range kw.([]any) {
				if _, ok := obj[r.(string)]; !ok {
					fail("required property %q is missing", r)
				}
			}
		case "items":
			arr, ok := val.([]any)
			if !ok {
				continue
			}
			for i, it := range arr {
				v.check(kw.(map[string]any), it, fmt.Sprintf("%s/%d", at, i), errs)
			}
		case "pattern":
			str, ok := val.(string)
			if !ok {
				continue
			}
			re := patterns[kw.(string)]
			if re == nil {
				re = regexp.MustCompile(kw.(string))
				patterns[kw.(string)] = re
			}
			if !re.MatchString(str) {
				fail("%q does not match %s", str, kw)
			}
		case "minLength":
			if str, ok := val.(string); ok && float64(utf8.RuneCountInString(str)) < kw.(float64) {
				fail("%q is shorter than %v", str, kw)
			}
		case "enum":
			if !slices.ContainsFunc(kw.([]any), func(e any) bool { return e == val }) {
				fail("%s is not one of %v", short(val), kw)
			}
		case "format":
			if str, ok := val.(string); ok && kw == "date-time" {
				if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
					fail("%q is not an RFC 3339 date-time", str)
				}
			}
		case "contentEncoding":
			if str, ok := val.(string); ok && kw == "base64" {
				if _, err := base64.StdEncoding.DecodeString(str); err != nil {
					fail("not base64: %v", err)
				}
			}
		case "oneOf", "anyOf":
			n := 0
			var why []string
			for _, sub := range kw.([]any) {
				var sube []string
				v.check(sub.(map[string]any), val, at, &sube)
				if len(sube) == 0 {
					n++
				} else {
					why = append(why, strings.Join(sube, "; "))
				}
			}
			if n == 0 || (k == "oneOf" && n > 1) {
				fail("%s: %d of %d alternatives hold (%s)", k, n, len(kw.([]any)), strings.Join(why, " | "))
			}
		case "not":
			var sube []string
			v.check(kw.(map[string]any), val, at, &sube)
			if len(sube) == 0 {
				fail("%s must not match %v", short(val), kw)
			}
		default:
			if !annotations[k] {
				fail("schema keyword %q is outside the subset this validator checks", k)
			}
		}
	}
}

func hasType(val any, typ string) bool {
	switch typ {
	case "object":
		_, ok := val.(map[string]any)
		return ok
	case "array":
		_, ok := val.([]any)
		return ok
	case "string":
		_, ok := val.(string)
		return ok
	case "boolean":
		_, ok := val.(bool)
		return ok
	case "integer":
		f, ok := val.(float64)
		return ok && f == float64(int64(f))
	case "null":
		return val == nil
	}
	return false
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
