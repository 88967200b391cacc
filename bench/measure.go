package bench

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Latencies collects durations and reports percentiles.
type Latencies struct{ d []time.Duration }

// Add records one duration.
func (l *Latencies) Add(d time.Duration) { l.d = append(l.d, d) }

// Len is the number of recorded durations.
func (l *Latencies) Len() int { return len(l.d) }

// Percentile returns the p-th percentile (0 < p <= 100) by the
// nearest-rank method, in milliseconds with one decimal, or 0 when empty.
func (l *Latencies) Percentile(p float64) float64 {
	if len(l.d) == 0 {
		return 0
	}
	if !sort.SliceIsSorted(l.d, func(i, j int) bool { return l.d[i] < l.d[j] }) {
		sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	}
	rank := int(math.Ceil(p / 100 * float64(len(l.d))))
	rank = min(max(rank, 1), len(l.d))
	return math.Round(float64(l.d[rank-1])/float64(time.Millisecond)*10) / 10
}

// PeakRSSMiB reads a process's peak resident set (VmHWM) from
// /proc/<pid>/status, in MiB with one decimal.
func PeakRSSMiB(pid int) (float64, error) { return statusMiB(pid, "VmHWM") }

// RSSMiB reads a process's resident set now (VmRSS) from
// /proc/<pid>/status, in MiB with one decimal.
func RSSMiB(pid int) (float64, error) { return statusMiB(pid, "VmRSS") }

func statusMiB(pid int, field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseStatus(f, field)
}

// parseStatus reads field (VmHWM, VmRSS: a size in kB) of a
// /proc/<pid>/status file.
func parseStatus(f *os.File, field string) (float64, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return vmKiBToMiB(field, rest)
		}
	}
	return 0, fmt.Errorf("%s: no %s line", f.Name(), field)
}

func vmKiBToMiB(name, field string) (float64, error) {
	kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(field), "kB")), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", name, field, err)
	}
	return math.Round(float64(kb)/1024*10) / 10, nil
}
