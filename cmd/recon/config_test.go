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
