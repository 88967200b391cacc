package bus

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// copyDir copies a directory tree: the image of a data dir at that instant,
// as a kill -9 leaves it (kfake writes each batch as it takes it).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A data dir killed with a transaction open reloads with the transaction
// aborted but no abort marker: a read-committed replay stalls short of the
// last stable offset. RepairAfterCrash writes the marker; the replay ends.
func TestRepairAfterCrashEndsAStalledReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	live, crashed := t.TempDir(), t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(live), kfake.SyncWrites(), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	kc := Config{Brokers: c.ListenAddrs(), Partitions: 1, ReplicationFactor: 1, ClientID: "repair-test"}
	p, err := kgo.NewClient(kc.Opts(kgo.TransactionalID("p"))...)
	if err != nil {
		t.Fatal(err)
	}
	for i, commit := range []bool{true, false} { // one committed transaction, then one open at the "kill"
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
	}
	copyDir(t, live, crashed)
	p.Close()
	c.Close()

	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(crashed), kfake.SyncWrites())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	kc.Brokers = c2.ListenAddrs()
	var stalled *ErrReplayStalled
	if _, err := ReplayWithin(ctx, kc, "t", []int32{0}, 500*time.Millisecond, func(*kgo.Record) error { return nil }); !errors.As(err, &stalled) {
		t.Fatalf("replay of the crashed data dir: %v, want it stalled (did kfake start writing abort markers on load? then RepairAfterCrash is moot)", err)
	}
	n, err := RepairAfterCrash(ctx, kc, []string{"t"})
	if err != nil || n != 1 {
		t.Fatalf("repair: %d markers, %v; want 1", n, err)
	}
	var values []byte
	if _, err := ReplayWithin(ctx, kc, "t", []int32{0}, 5*time.Second, func(r *kgo.Record) error { values = append(values, r.Value...); return nil }); err != nil {
		t.Fatalf("replay after the repair: %v", err)
	}
	if string(values) != "\x00" {
		t.Fatalf("replay read %v, want only the committed record [0]", values)
	}
	if n, err := RepairAfterCrash(ctx, kc, []string{"t"}); err != nil || n != 0 {
		t.Fatalf("second repair: %d markers, %v; want 0", n, err)
	}
}
