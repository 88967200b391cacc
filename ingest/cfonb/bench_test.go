package cfonb

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkRead: one statement of 10,000 movements, each with two
// complements, read streaming.
func BenchmarkRead(b *testing.B) {
	var f bytes.Buffer
	f.WriteString(record(nil) + "\r\n")
	move := record(map[int]string{1: "04", 8: "0501", 43: "050126", 49: "VIR SEPA MAX MUSTERMANN", 91: "0000000000000{"}) + "\r\n"
	lib := record(map[int]string{1: "05", 46: "LIB", 49: "Rate Januar LOAN-42"}) + "\r\n"
	rcn := record(map[int]string{1: "05", 46: "RCN", 49: "E2E-LOAN-42"}) + "\r\n"
	for range 10_000 {
		f.WriteString(move + lib + rcn)
	}
	f.WriteString(strings.Replace(record(nil), "01", "07", 1) + "\r\n")
	raw := f.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(raw), "bench", DefaultLimits(), func(any) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
