package analytics

import (
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Open returns a native-protocol connection pool to the ClickHouse at addr
// ("host:port", port 9000 or the local script's 19000). The HTTP protocol
// does not work with ClickHouse 18.16; the native one works with every
// version recon supports.
func Open(addr string) (driver.Conn, error) {
	return clickhouse.Open(&clickhouse.Options{
		Addr:            []string{addr},
		Protocol:        clickhouse.Native,
		DialTimeout:     5 * time.Second,
		ReadTimeout:     60 * time.Second,
		MaxOpenConns:    4,
		MaxIdleConns:    2,
		ConnMaxLifetime: time.Hour,
		Compression:     &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
}
