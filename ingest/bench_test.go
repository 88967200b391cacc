package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkFileStream ingests one large camt.053 (RECON_BENCH_FILE_MB,
// default 64) from disk and reports the peak Go heap while doing so. The
// broker acknowledges every produce without keeping it (kfake would
// otherwise hold the whole file), so the heap is ingest's own:
//
//	RECON_BENCH_FILE_MB=1024 go test -run - -bench FileStream -benchtime 1x ./ingest/
func BenchmarkFileStream(b *testing.B) {
	mb := 64
	if v, err := strconv.Atoi(os.Getenv("RECON_BENCH_FILE_MB")); err == nil && v > 0 {
		mb = v
	}
	f, digest, entries := bigCamt(b, int64(mb)<<20)
	defer f.Close()
	cluster, kc := kafkaFor(b)
	discardProduce(cluster)
	in := newIngest(b, kc, WebhookConfig{})
	in.limits.ISO.MaxFileBytes = int64(mb+1) << 20 // the reader's default is 512 MiB
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in.files = map[string]time.Time{} // not a duplicate the second time
		runtime.GC()
		stop := heapPeak()
		start := time.Now()
		s, err := in.FileFrom(context.Background(), "big.xml", f, digest)
		elapsed := time.Since(start)
		hp := stop()
		if err != nil || s.Transactions != entries {
			b.Fatalf("%+v %v, want %d transactions", s.Transactions, err, entries)
		}
		b.ReportMetric(float64(hp)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(mb)/elapsed.Seconds(), "MB/s")
		b.ReportMetric(float64(s.KafkaTransactions), "kafka-txns")
	}
}

// heapPeak samples the live heap until stop, which returns the peak.
func heapPeak() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// discardProduce makes the broker acknowledge every produce request
// without storing its records.
func discardProduce(c *kfake.Cluster) {
	var offset atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.BaseOffset = rp.Partition, offset.Add(1000)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	// the broker saw no records in the transaction: its end is a no-op
	c.ControlKey(int16(kmsg.EndTxn), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return kr.(*kmsg.EndTxnRequest).ResponseKind(), nil, true
	})
}

// bigCamt writes a camt.053 of about size bytes to a temporary file:
// statements of 10,000 entries each.
func bigCamt(b *testing.B, size int64) (*os.File, string, int) {
	f, err := os.CreateTemp(b.TempDir(), "big-*.xml")
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>BIG-1</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
`)
	var written int64
	n := 0
	for stmt := 1; written < size; stmt++ {
		k, _ := fmt.Fprintf(w, "<Stmt><Id>S%d</Id><Acct><Id><IBAN>FR4630001007940000000000106</IBAN></Id></Acct>\n", stmt)
		written += int64(k)
		for e := 0; e < 10_000 && written < size; e++ {
			n++
			k, _ := fmt.Fprintf(w, `<Ntry><Amt Ccy="EUR">%d.%02d</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>BIG-%d</AcctSvcrRef>`+
				`<NtryDtls><TxDtls><Refs><EndToEndId>E2E-%d</EndToEndId></Refs><RmtInf><Ustrd>Loan instalment November, contract %d</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>`+"\n", 1+n%9999, n%100, n, n, n)
			written += int64(k)
		}
		fmt.Fprint(w, "</Stmt>\n")
	}
	fmt.Fprint(w, "</BkToCstmrStmt></Document>\n")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	return f, hex.EncodeToString(h.Sum(nil)), n
}
