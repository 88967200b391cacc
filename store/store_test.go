package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func scan(p *Part, prefix string) string {
	var out []string
	p.Scan(prefix, func(k string, v []byte) bool { out = append(out, k+"="+string(v)); return true })
	return strings.Join(out, " ")
}

func TestPartPendingCommitDiscard(t *testing.T) {
	db, err := Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Part("route/p000/")
	p.Set("a1", []byte("x"))
	p.Set("a3", []byte("z"))
	if v, ok := p.Get("a1"); !ok || string(v) != "x" {
		t.Fatalf("pending write not read back: %q %v", v, ok)
	}
	if err := p.Commit(Mark{Topic: "t", TopicID: "id", Next: 7}); err != nil {
		t.Fatal(err)
	}
	// a new transaction: one set, one delete, one new key between committed ones
	p.Set("a2", []byte("y"))
	p.Delete("a3")
	p.Set("b1", []byte("other prefix"))
	if got, want := scan(p, "a"), "a1=x a2=y"; got != want {
		t.Fatalf("scan with pending = %q, want %q", got, want)
	}
	p.Discard()
	if got, want := scan(p, "a"), "a1=x a3=z"; got != want {
		t.Fatalf("scan after discard = %q, want %q", got, want)
	}
	if m, err := p.Mark(); err != nil || m.Next != 7 || m.TopicID != "id" {
		t.Fatalf("mark = %+v, %v", m, err)
	}
	// another partition does not see it
	q := db.Part("route/p001/")
	if got := scan(q, ""); got != "" {
		t.Fatalf("partition 1 sees %q", got)
	}
	if m, _ := q.Mark(); m != (Mark{}) {
		t.Fatalf("partition 1 mark = %+v", m)
	}
	if err := p.Wipe(); err != nil {
		t.Fatal(err)
	}
	if got := scan(db.Part("route/p000/"), ""); got != "" {
		t.Fatalf("after wipe: %q", got)
	}
}

// A store survives reopening; one whose files are cut in half is removed
// and comes back empty, never half-read.
func TestReopenAndTruncated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "route")
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := db.Part("p/")
	for i := range 5000 {
		p.Set(fmt.Sprintf("k%05d", i), []byte(strings.Repeat("v", 100)))
	}
	if err := p.Commit(Mark{Next: 5000}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := db.Part("p/").Mark(); err != nil || m.Next != 5000 {
		t.Fatalf("after reopen: mark %+v, %v", m, err)
	}
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of a store in use: %v, want an error saying it is in use", err)
	}
	db.Close()

	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if f.Name() == "LOCK" || f.IsDir() {
			continue
		}
		path := filepath.Join(dir, f.Name())
		fi, _ := os.Stat(path)
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatalf("truncated store: %v, want it removed and opened empty", err)
	}
	defer db.Close()
	part := db.Part("p/")
	m, err := part.Mark()
	n := 0
	part.Scan("", func(string, []byte) bool { n++; return true })
	if err == nil && part.Err() == nil && m.Next == 5000 && n != 5000 {
		t.Fatalf("truncated store trusted: mark says 5000 records, %d read", n)
	}
	if m.Next != 0 && n != 5000 {
		t.Fatalf("mark %d with %d records", m.Next, n)
	}
}

// The key filter never hides a key the Part holds: committed before it
// was built, written after, across its growth and a reopen.
func TestFilterNoFalseNegatives(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := db.Part("x/")
	const n = 3 * filterMinKeys
	for i := range n / 3 {
		p.Set(fmt.Sprintf("k%d", i), []byte("v"))
	}
	if err := p.Commit(Mark{Next: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Get("absent"); ok {
		t.Fatal("absent key found")
	}
	for i := n / 3; i < n; i++ { // past the filter's size: it grows
		p.Set(fmt.Sprintf("k%d", i), []byte("v"))
		if i%10000 == 0 {
			if err := p.Commit(Mark{Next: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Commit(Mark{Next: n}); err != nil {
		t.Fatal(err)
	}
	check := func(p *Part) {
		t.Helper()
		missing, false_ := 0, 0
		for i := range n {
			if _, ok := p.Get(fmt.Sprintf("k%d", i)); !ok {
				missing++
			}
			if _, ok := p.Get(fmt.Sprintf("absent%d", i)); ok {
				false_++
			}
		}
		if missing > 0 || false_ > 0 {
			t.Fatalf("%d of %d keys not found, %d absent keys found", missing, n, false_)
		}
	}
	check(p)
	db.Close()
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db.Part("x/"))
}
