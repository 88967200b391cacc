package service_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// syncBuffer is a log the matcher writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	routeRestored = regexp.MustCompile(`msg="route stage restored" .*? records=(\d+)`)
	postRestored  = regexp.MustCompile(`msg="post stage restored" .*? records=(\d+)`)
	loansLoaded   = regexp.MustCompile(`msg="loans table caught up" loans=(\d+) .*? records=(\d+)`)
)

// restoredRecords sums the dedup changelog records the route stage read
// to restore its partitions.
func restoredRecords(re *regexp.Regexp, log string) int {
	n := 0
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		c, _ := strconv.Atoi(m[1])
		n += c
	}
	return n
}

// The route stage's state survives a restart in its local store, present,
// lost, stale (an older copy) or cut in half: in every case, every movement
// delivered again after the restart is recognised (no money posted twice),
// and with the store present the restart reads only the changelog's tail.
func TestServiceRestartWithLocalState(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir, stale string)
		// tail: the restore reads at most this many changelog records
		tail int
	}{
		{name: "store present", damage: func(*testing.T, string, string) {}, tail: 0},
		{name: "store lost", damage: func(t *testing.T, dir, _ string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, tail: -1},
		{name: "store stale", damage: func(t *testing.T, dir, stale string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(dir, os.DirFS(stale)); err != nil {
				t.Fatal(err)
			}
		}, tail: 200},
		{name: "store truncated", damage: func(t *testing.T, dir, _ string) {
			filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() == "LOCK" {
					return err
				}
				fi, _ := d.Info()
				return os.Truncate(path, fi.Size()/2)
			})
		}, tail: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			noLeaks(t)
			e := newEnv(t)
			e.dataDir = t.TempDir()
			store := filepath.Join(e.dataDir, "matcher", "m-local")
			stale := filepath.Join(t.TempDir(), "stale")
			const nLoans = 10
			var loans []recon.Loan
			for i := range nLoans {
				loans = append(loans, loan(fmt.Sprintf("L-%d", i), vIBAN(i), "100000.00"))
			}
			e.loans(loans...)
			var txns []recon.BankTransaction
			for i := range 400 {
				txns = append(txns, credit(fmt.Sprintf("p-%d", i), fmt.Sprintf("REF-%d", i), vIBAN(i%nLoans), fmt.Sprintf("%d.%02d", 1+i%97, i%100)))
			}
			// two phases, the store copied between them (the stale copy)
			stop := e.start("m-local", 50)
			e.publish(txns[:200])
			e.waitDecided(60 * time.Second)
			stop()
			if err := os.CopyFS(stale, os.DirFS(store)); err != nil {
				t.Fatal(err)
			}
			stop = e.start("m-local", 50)
			e.publish(txns[200:])
			e.waitDecided(60 * time.Second)
			stop()

			c.damage(t, store, stale)
			log := &syncBuffer{}
			e.log = log
			stop = e.start("m-local", 50)
			defer stop()
			again := make([]recon.BankTransaction, len(txns))
			for i, tx := range txns {
				tx.ID = "again-" + tx.ID // another source, same bank reference
				again[len(txns)-1-i] = tx
			}
			e.publish(again)
			o := e.waitDecided(60 * time.Second)
			ids := map[string]int{}
			total := decimal.Zero
			for _, tx := range txns {
				ids[identity(tx)] += 2
				total = total.Add(tx.Amount)
			}
			checkExactlyOnce(t, o, ids)
			if got := o.balance["bank:"+acct].Neg(); !got.Equal(total) {
				t.Errorf("bank account debited %s, want %s (each transaction once)", got, total)
			}
			// the loans did not change since the store was written: with a
			// usable store none is read from the topic
			if m := loansLoaded.FindStringSubmatch(log.String()); m == nil || m[1] != strconv.Itoa(nLoans) ||
				(c.tail >= 0) != (m[2] == "0") {
				t.Errorf("loans table after the restart: %v, want %d loans, read from the topic only without a usable store", m, nLoans)
			}
			read, journal := restoredRecords(routeRestored, log.String()), restoredRecords(postRestored, log.String())
			t.Logf("the restore read %d dedup changelog records, %d journal entries", read, journal)
			switch {
			case c.tail >= 0 && read > c.tail:
				t.Errorf("restore read %d changelog records, want at most %d (the tail after the store's mark)", read, c.tail)
			case c.tail < 0 && read < len(txns):
				t.Errorf("restore read %d changelog records with no usable store, want all %d", read, len(txns))
			case c.tail >= 0 && journal > c.tail:
				t.Errorf("restore read %d journal entries, want at most %d (the tail after the store's mark)", journal, c.tail)
			case c.tail < 0 && journal < len(txns):
				t.Errorf("restore read %d journal entries with no usable store, want all %d", journal, len(txns))
			}
			stop()
		})
	}
}
