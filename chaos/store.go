package chaos

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The matcher keeps its state in a local store (matcher/<instance> under
// its data dir) that a restart catches up from the changelogs. These
// scenarios SIGKILL it while sightings stream in and damage the store
// before it restarts, the way machines lose disks: gone (a new machine),
// an older copy (a restored backup, a volume snapshot), files cut short.
// Whatever the store holds, no movement may be lost or posted twice.

// storeDamage is what happens to the store between a kill and the
// restart; it says what it did.
type storeDamage func(e *Env, store, older string) string

func storeLost(e *Env) Row {
	return storeFaults(e, 11, func(_ *Env, store, _ string) string {
		if err := os.RemoveAll(store); err != nil {
			return "not removed: " + err.Error()
		}
		return "removed"
	})
}

// storeStale alternates files cut in half with an older copy of the store
// (the copy the first kill took: older by the kills since).
func storeStale(e *Env) Row {
	n := 0
	return storeFaults(e, 12, func(_ *Env, store, older string) string {
		n++
		if n%2 == 0 {
			if err := os.RemoveAll(store); err != nil {
				return "not replaced: " + err.Error()
			}
			if err := os.CopyFS(store, os.DirFS(older)); err != nil {
				return "not replaced: " + err.Error()
			}
			return "replaced by an older copy"
		}
		cut := 0
		_ = filepath.WalkDir(store, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == "LOCK" {
				return err
			}
			if fi, err := d.Info(); err == nil && fi.Size() > 0 {
				if os.Truncate(path, fi.Size()/2) == nil {
					cut++
				}
			}
			return nil
		})
		return fmt.Sprintf("%d files cut in half", cut)
	})
}

// storeFaults kills the matcher a few times (the tier's kills, at least
// three) while sightings stream in, damaging its store before each
// restart; the first kill also keeps a copy of the store, the older copy
// later damage may put back. The fault is shown when each restart logged
// that it restored its state from the changelogs.
func storeFaults(e *Env, seed uint64, damage storeDamage) Row {
	w := e.NewRun(e.Tier.Txns)
	start := time.Now()
	deadline := start.Add(e.Tier.Settle)
	kills := max(3, e.Tier.Kills/2)
	f := e.startFeed(w, e.Tier.Txns/4, time.Duration(kills)*3*time.Second, 3*time.Minute, deadline)
	rng := rand.New(rand.NewPCG(e.Seed, seed))
	store := e.matcherStore("m1")
	older := filepath.Join(e.LogDir, fmt.Sprintf("matcher-store-copy-%d", seed))
	var did, restored []string
	var slowest time.Duration
	why := ""
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		took, notReady, err := ready(e.Matcher, 0, min(2*time.Minute, time.Until(deadline)+10*time.Second))
		if err != nil {
			_, _ = f.end()
			return failRow(err)
		}
		if notReady != "" {
			why = fmt.Sprintf("machine too slow: after restart %d, %s", k, notReady)
			break
		}
		slowest = max(slowest, took)
		e.Matcher.Signal(syscall.SIGKILL)
		if k == 0 {
			_ = os.RemoveAll(older)
			if err := os.CopyFS(older, os.DirFS(store)); err != nil {
				_, _ = f.end()
				return failRow(fmt.Errorf("copy the store: %w", err))
			}
		}
		did = append(did, damage(e, store, older))
		if err := e.restartMatcherKeeping(); err != nil {
			_, _ = f.end()
			return failRow(err)
		}
		if _, notReady, err := ready(e.Matcher, 0, 2*time.Minute); err != nil || notReady != "" {
			_, _ = f.end()
			if err == nil {
				err = fmt.Errorf("matcher not ready after its store was %s: %s", did[len(did)-1], notReady)
			}
			return failRow(err)
		}
		restored = append(restored, restoreLine(e.Matcher))
	}
	faultEnd := time.Now()
	ws, err := f.end()
	if err != nil {
		return failRow(err)
	}
	r, rec := e.verifyAll(ws, faultEnd)
	// shown: every restart read its state back from the changelog
	shown := len(restored) > 0
	for _, l := range restored {
		shown = shown && strings.HasPrefix(l, "records=") && l != "records=0"
	}
	if why == "" {
		why = unless(shown, "a restarted matcher did not log that it read its state back from the changelog")
	}
	ev := fmt.Sprintf("%d SIGKILLs in %s, the store then %s; restarts restored: %s (ready at most %s after each pause); %d sightings of %d runs",
		len(did), faultEnd.Sub(start).Round(time.Second), strings.Join(did, ", "), strings.Join(restored, " | "), slowest.Round(100*time.Millisecond), sightings(ws), len(ws))
	return rowOf(r, ev, why, rec, sightings(ws))
}

// restoreLine is what a matcher logged of its route stage's restore.
func restoreLine(p *Proc) string {
	l := p.LogFirst(`msg="route stage restored" partitions=`)
	if i := strings.Index(l, "records="); i >= 0 {
		return strings.Fields(l[i:])[0]
	}
	return l
}

// restartMatcherKeeping starts m1 again after a kill, with its data dir.
func (e *Env) restartMatcherKeeping() error {
	m, err := Start(e.Bin, e.LogDir, "match-m1", nil, "match", "--brokers", e.Svc.Brokers(), "--instance", "m1", "--data-dir", e.matcherData())
	e.Matcher = m
	return err
}
