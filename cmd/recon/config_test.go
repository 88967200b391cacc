package main

import (
	"strings"
	"testing"
	"time"
)

// TestMalformedEnvironmentStops: a malformed environment default stops the
// command with a message naming the variable; it never turns silently into
// the default.
func TestMalformedEnvironmentStops(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       string // in the error; "" for none
		check      func(settings) bool
	}{
		{"RECON_PARTITIONS", "abc", `RECON_PARTITIONS="abc": not an integer`, nil},
		{"RECON_PARTITIONS", "3.5", `RECON_PARTITIONS="3.5"`, nil},
		{"RECON_REPLICATION_FACTOR", "three", `RECON_REPLICATION_FACTOR="three"`, nil},
		{"RECON_EMBEDDED_KAFKA_PORT", "9092x", `RECON_EMBEDDED_KAFKA_PORT="9092x"`, nil},
		{"RECON_CLICKHOUSE_FLUSH", "250", `RECON_CLICKHOUSE_FLUSH="250": not a duration`, nil},
		{"RECON_PARTITIONS", "", "", func(s settings) bool { return s.partitions == 3 }},
		{"RECON_PARTITIONS", "12", "", func(s settings) bool { return s.partitions == 12 }},
		{"RECON_CLICKHOUSE_FLUSH", "1s", "", func(s settings) bool { return s.chFlush == time.Second }},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.key, tc.value)
			var s settings
			fs := newFlags("test", &s)
			err := s.defaults.err()
			code := s.parse(fs, nil)
			switch {
			case tc.want == "" && (err != nil || code != 0):
				t.Fatalf("exit %d, %v; want no error", code, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v; want it to contain %q", err, tc.want)
			case tc.want != "" && code == 0:
				t.Fatalf("parse went on with %v", err)
			case tc.check != nil && !tc.check(s):
				t.Fatalf("settings %+v", s)
			}
		})
	}
}

// RECON_LOAN_REFERENCE_FORMAT is a Go regexp matched against a whole token;
// a malformed one stops recon at start with a message naming it.
func TestLoanReferenceFormat(t *testing.T) {
	for _, tc := range []struct {
		value, err   string
		match, other []string
	}{
		{value: ""},
		{value: "L-[0-9]{6}", match: []string{"L-000123"}, other: []string{"XL-000123", "L-0001234", "L-000123X", "000123"}},
		{value: "L-[0-9]+|C[0-9]{4}", match: []string{"L-1", "C2024"}, other: []string{"L-1C2024", "C20241"}},
		{value: "L-[", err: `RECON_LOAN_REFERENCE_FORMAT="L-[" is not a Go regular expression`},
		{value: "[0-9]*", err: "matches the empty text"},
	} {
		t.Setenv("RECON_LOAN_REFERENCE_FORMAT", tc.value)
		re, err := loanReference()
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error with %q", tc.value, err, tc.err)
			}
			continue
		case err != nil:
			t.Errorf("%q: %v", tc.value, err)
			continue
		case tc.value == "" && re != nil:
			t.Errorf("unset: %v, want no format", re)
		}
		for _, s := range tc.match {
			if !re.MatchString(s) {
				t.Errorf("%q does not match %q", tc.value, s)
			}
		}
		for _, s := range tc.other {
			if re.MatchString(s) {
				t.Errorf("%q matches %q: a token must match whole", tc.value, s)
			}
		}
	}
}
