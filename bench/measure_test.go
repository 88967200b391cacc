package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var l Latencies
	if l.Percentile(99) != 0 {
		t.Fatal("empty: want 0")
	}
	for i := 100; i >= 1; i-- {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := l.Percentile(c.p); got != c.want {
			t.Errorf("p%.0f = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(path, []byte("Name:\trecon\nVmPeak:\t 999 kB\nVmHWM:\t  153600 kB\nVmRSS:\t  51200 kB\nVmBad:\t x kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		want  float64
		err   bool
	}{{"VmHWM", 150, false}, {"VmRSS", 50, false}, {"VmSwap", 0, true}, {"VmBad", 0, true}} {
		f, _ := os.Open(path)
		got, err := parseStatus(f, c.field)
		f.Close()
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s: got %v, %v; want %v (error %v)", c.field, got, err, c.want, c.err)
		}
	}
}

func TestPeakRSSOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	if mib, err := PeakRSSMiB(os.Getpid()); err != nil || mib <= 0 {
		t.Fatalf("peak: got %v, %v", mib, err)
	}
	if mib, err := RSSMiB(os.Getpid()); err != nil || mib <= 0 {
		t.Fatalf("now: got %v, %v", mib, err)
	}
}
