package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest"
)

// TestDLQListAndRedrive: list shows a dead letter, redrive publishes it
// and marks it, list then hides it (--all shows it), and a second redrive
// skips it.
func TestDLQListAndRedrive(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kc := bus.DefaultConfig()
	kc.Brokers = c.ListenAddrs()
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := bus.EnsureTopics(ctx, cl, kc); err != nil {
		t.Fatal(err)
	}
	in := ingest.New(cl, kc, ingest.NewMetrics(nil))
	body := `[{"id":"p-1","account_iban":"DE89370400440532013000","direction":"credit","amount":"5.00","currency":"EUR","bank_reference":"R-1"}]`
	if err := in.DeadLetter(ctx, "transactions", "/v1/bank/transactions", "kafka hiccup", []byte(body)); err != nil {
		t.Fatal(err)
	}
	brokers := "--brokers=" + strings.Join(kc.Brokers, ",")
	run := func(args ...string) (string, int) {
		var out bytes.Buffer
		code := dlq(ctx, append(args, brokers), &out)
		return out.String(), code
	}
	out, code := run("list")
	if code != 0 || !strings.Contains(out, "transactions:") || !strings.Contains(out, "kafka hiccup") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if out, code = run("redrive", "--source", "transactions", "--dry-run"); code != 0 || !strings.Contains(out, "would be published") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if out, code = run("redrive", "--source", "transactions"); code != 0 || !strings.Contains(out, "1 transactions published") {
		t.Fatalf("redrive: exit %d\n%s", code, out)
	}
	if out, _ = run("list"); strings.Contains(out, "transactions:") {
		t.Fatalf("list after redrive still shows it:\n%s", out)
	}
	if out, _ = run("list", "--all", "--json"); !strings.Contains(out, `"redriven":"`) {
		t.Fatalf("list --all --json does not show it redriven:\n%s", out)
	}
	if out, code = run("redrive", "--source", "transactions"); code != 0 || !strings.Contains(out, "skipped") {
		t.Fatalf("second redrive: exit %d\n%s", code, out)
	}
	if _, code = run("redrive"); code == 0 {
		t.Fatal("redrive without --id or --source succeeded")
	}
}
