package matcher

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/reconhq/recon"
)

// BenchmarkPost is the Poster alone on its default store: a new repayment
// with an end-to-end id each time, over 10,000 loans with a 12-instalment
// schedule. It reports the heap the Poster holds per posting after b.N
// postings (run with -benchtime=200000x for a stable figure): with a MemKV
// that includes what the store keeps.
func BenchmarkPost(b *testing.B) {
	benchmarkPost(b, NewPoster)
}

func benchmarkPost(b *testing.B, newPoster func(*Loans) *Poster) {
	loans := NewLoans()
	const nLoans = 10000
	for i := range nLoans {
		loans.Put(recon.Loan{LoanID: "L-" + strconv.Itoa(i), VirtualIBAN: fmt.Sprintf("DE00VIBA%010d", i), Currency: "EUR",
			Principal: dec("1000000.00"), Schedule: schedule12(i)})
	}
	// Records are made in batches outside the timer; what the Poster does
	// not keep of them is garbage by the end, as in the service.
	batch := make([]Routed, 4096)
	var making float64 // CPU seconds spent making records
	fill := func(from int) {
		b.StopTimer()
		start := cpuSeconds()
		defer func() { making += cpuSeconds() - start }()
		for j := range batch {
			i := from + j
			t := credit("12.34", "", "E2E-"+strconv.Itoa(i))
			t.ID = "bt_" + strconv.Itoa(i)
			loan := "L-" + strconv.Itoa(i%nLoans)
			batch[j] = Routed{Kind: KindMatch, Key: loan, LoanID: loan, Rule: RuleVirtualIBAN, Transaction: t}
		}
		b.StartTimer()
	}
	p := newPoster(loans)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuSeconds()
	for i := range b.N {
		if i%len(batch) == 0 {
			fill(i)
		}
		if res := p.Post(now, batch[i%len(batch)]); res.Decision.Outcome != recon.Posted {
			b.Fatalf("%q %s", res.Decision.Outcome, res.Decision.Reason)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "postings/s")
	// Per second of the process's CPU (GC included, making records not):
	// steadier than wall time on a shared machine.
	b.ReportMetric(float64(b.N)/(cpuSeconds()-cpu-making), "postings/cpu-s")
	// What the Poster holds: the heap with it, less the heap without it
	// (the loans table stays).
	clear(batch)
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(p)
	p = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	held := float64(with.HeapAlloc) - float64(without.HeapAlloc)
	b.ReportMetric(held/float64(b.N), "heap-B/posting")
	b.ReportMetric(held/(1<<20), "heap-MiB")
	runtime.KeepAlive(loans)
}
