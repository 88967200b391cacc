package analytics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// BenchmarkInsertPostings measures a backfill of the journal: JSON records
// of two-posting entries decoded (Build) and written as one INSERT of
// 50,000 rows, as the sink does per batch.
func BenchmarkInsertPostings(b *testing.B) {
	conn, db := clickhouseConn(b)
	ctx := context.Background()
	if err := Migrate(ctx, conn, db); err != nil {
		b.Fatal(err)
	}
	s := &Sink{cfg: Config{Database: db}.withDefaults(), conn: conn}
	const entries = 25_000
	recs := make([]*kgo.Record, entries)
	at := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: schemas.TopicLedgerEntries, Partition: 0, Offset: int64(i), Timestamp: at,
			Value: fmt.Appendf(nil, `{"id":"E%d","kind":"repayment","loan_id":"L%d","transaction_id":"T%d","effective_date":"2024-03-01","booked_at":"2024-03-01T10:00:00Z","sequence":%d,"prev_hash":"5f2b8c0e","hash":"9a1d3e77","postings":[{"account":"cash:bank","side":"debit","amount":"%d.25","currency":"EUR"},{"account":"loan:L%d:principal","side":"credit","amount":"%d.25","currency":"EUR"}]}`,
				i, i%1000, i, i, i%500, i%1000, i%500)}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rows := Build(recs)
		if err := s.insert(ctx, tableLedgerPostings, columnsOf(tableLedgerPostings, &rows)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*2*entries)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkInsertPostingsOnly is the ClickHouse side alone: rows already
// built, 50,000 per INSERT.
func BenchmarkInsertPostingsOnly(b *testing.B) {
	conn, db := clickhouseConn(b)
	ctx := context.Background()
	if err := Migrate(ctx, conn, db); err != nil {
		b.Fatal(err)
	}
	s := &Sink{cfg: Config{Database: db}.withDefaults(), conn: conn}
	recs := make([]*kgo.Record, 25_000)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: schemas.TopicLedgerEntries, Offset: int64(i), Timestamp: time.Unix(1e9, 0),
			Value: fmt.Appendf(nil, `{"id":"E%d","kind":"repayment","loan_id":"L1","booked_at":"2024-03-01T10:00:00Z","postings":[{"account":"cash:bank","side":"debit","amount":"1.25","currency":"EUR"},{"account":"loan:L1:principal","side":"credit","amount":"1.25","currency":"EUR"}]}`, i)}
	}
	rows := Build(recs)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := s.insert(ctx, tableLedgerPostings, columnsOf(tableLedgerPostings, &rows)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows.LedgerPostings))/time.Since(start).Seconds(), "rows/s")
}
