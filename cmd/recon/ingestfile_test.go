package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest"
)

func camtFile(msgID string, refs ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>`+
		`<GrpHdr><MsgId>%[1]s</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr><Stmt><Id>S-%[1]s</Id><Acct><Id><IBAN>FR7630001007940000000000106</IBAN></Id></Acct>`, msgID)
	for _, ref := range refs {
		fmt.Fprintf(&b, `<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>%s</AcctSvcrRef></Ntry>`, ref)
	}
	b.WriteString(`</Stmt></BkToCstmrStmt></Document>`)
	return []byte(b.String())
}

// `recon ingest file` beside a running server: its transactional ids are
// its own, so it does not fence the server's file producers (the server's
// next file would fail), and it streams the file from disk.
func TestIngestFileDoesNotFenceTheServer(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	txnIDs := map[string]string{} // transactional id -> who initialised it
	who := "server"
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if id := req.(*kmsg.InitProducerIDRequest).TransactionalID; id != nil {
			mu.Lock()
			if prev, ok := txnIDs[*id]; ok && prev != who {
				t.Errorf("transactional id %s used by the %s and the %s: one fences the other", *id, prev, who)
			}
			txnIDs[*id] = who
			mu.Unlock()
		}
		return nil, nil, false
	})
	var s settings
	if code := s.parse(newFlags("ingest file", &s), []string{"--brokers", strings.Join(c.ListenAddrs(), ",")}); code != 0 {
		t.Fatalf("parse: %d", code)
	}
	kc, err := s.cluster("test") // the ClientID the CLI uses, as the server would
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	server := ingest.New(cl, kc, ingest.NewMetrics(nil)) // as serve.go: the default file producers
	defer server.Close()
	if _, err := server.File(ctx, "a.xml", camtFile("A", "REF-A1")); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "b.xml")
	if err := os.WriteFile(path, camtFile("B", "REF-B1", "REF-B2"), 0o600); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	who = "CLI"
	mu.Unlock()
	args := []string{"--brokers", strings.Join(kc.Brokers, ","), path}
	if code := ingestFiles(ctx, args); code != 0 {
		t.Fatalf("recon ingest file: exit %d", code)
	}
	if code := ingestFiles(ctx, args); code != 0 { // a rerun fences only its predecessor
		t.Fatalf("recon ingest file again: exit %d", code)
	}
	mu.Lock()
	who = "server"
	mu.Unlock()
	if _, err := server.File(ctx, "c.xml", camtFile("C", "REF-C1")); err != nil {
		t.Fatalf("the server's next file after recon ingest file: %v", err)
	}

	// what the CLI published is complete: the statement carries the marker
	var marked int
	_, err = bus.Replay(ctx, kc, "recon.statements.v1", bus.Partitions(kc.Partitions), func(r *kgo.Record) error {
		if bus.Header(r, ingest.HeaderFileComplete) != "" && strings.Contains(string(r.Value), "S-B") {
			marked++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if marked != 2 {
		t.Fatalf("%d marked statements of the CLI's file, want 2 (it was sent twice)", marked)
	}
}

func TestOneShotFilesHaveTheirOwnTransactionalIDs(t *testing.T) {
	kc := bus.DefaultConfig()
	kc.ClientID = "recon-recon-0"
	server := kc.ClientID + "-ingest-files" // ingest.FileConfig's default prefix
	seen := map[string]bool{server: true}
	for _, cmd := range []string{"ingest-file", "dlq-redrive"} {
		id := oneShotFiles(kc, cmd).TransactionalID
		if seen[id] || strings.HasPrefix(server, id) || strings.HasPrefix(id, server) {
			t.Errorf("%s: transactional id %q collides", cmd, id)
		}
		seen[id] = true
	}
}
