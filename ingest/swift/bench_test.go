package swift

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkRead: one 10,000-line MT940 statement with German :86: details,
// read streaming; MB/s and allocations per file.
func BenchmarkRead(b *testing.B) {
	var f bytes.Buffer
	f.WriteString(":20:STARTUMS\r\n:25:DE89370400440532013000\r\n:28C:00001/001\r\n:60F:C260105EUR0,00\r\n")
	for i := range 10_000 {
		fmt.Fprintf(&f, ":61:2601050105CR%d,%02dNTRFNONREF//BK%08d\r\n:86:166?00SEPA-GUTSCHRIFT?20EREF+E2E-%08d?21SVWZ+Rate Januar LOAN-%d?30COBA\r\nDEFFXXX?31DE02120300000000202051?32MAX MUSTERMANN\r\n", i, i%100, i, i, i)
	}
	f.WriteString(":62F:C260105EUR0,00\r\n-\r\n")
	raw := f.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(raw), "bench", DefaultLimits(), func(any) error { return nil }); err != nil && !bytes.Contains([]byte(err.Error()), []byte("message")) {
			b.Fatal(err)
		}
	}
}
