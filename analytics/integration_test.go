package analytics

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// clickhouseConn connects to the ClickHouse named by RECON_CLICKHOUSE_ADDR
// (deploy/local/clickhouse.sh env) and gives the test a fresh database,
// dropped at the end. Without the variable the test is skipped.
func clickhouseConn(t testing.TB) (driver.Conn, string) {
	t.Helper()
	addr := clickhouseAddr()
	if addr == "" {
		if os.Getenv("RECON_REQUIRE_SERVICES") == "1" {
			t.Fatal("RECON_REQUIRE_SERVICES=1 but RECON_CLICKHOUSE_ADDR is unset")
		}
		t.Skip("RECON_CLICKHOUSE_ADDR not set; start ClickHouse with deploy/local/clickhouse.sh start")
	}
	conn, err := Open(addr)
	if err != nil {
		t.Fatal(err)
	}
	dbSeq++
	db := fmt.Sprintf("recon_test_%d_%d", os.Getpid(), dbSeq)
	ctx := context.Background()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
		conn.Close()
	})
	return conn, db
}

var dbSeq int

func clickhouseAddr() string { return os.Getenv("RECON_CLICKHOUSE_ADDR") }

var _ = clickhouse.Open

func TestIntegrationMigrateTwice(t *testing.T) {
	conn, db := clickhouseConn(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := Migrate(ctx, conn, db); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(Migrations)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(Migrations))
	}
	for _, v := range ViewNames {
		rows, err := conn.Query(ctx, "SELECT * FROM "+db+"."+v)
		if err != nil {
			t.Errorf("view %s: %v", v, err)
			continue
		}
		rows.Close()
	}
}
