// Package bustest starts an in-memory Kafka (kfake) with recon's topics for
// a unit test: the one place tests get a broker without a server.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/bus"
)

// Cluster starts a one-broker kfake cluster holding every topic of
// schemas.Topics with the given partitions, and returns its configuration
// and a client; both are closed when the test ends.
func Cluster(t testing.TB, partitions int32) (bus.Config, *kgo.Client) {
	t.Helper()
	_, kc, cl := Fake(t, partitions)
	return kc, cl
}

// Fake is Cluster that also returns the kfake cluster, for a test that
// makes the broker fail requests (kfake's ControlKey).
func Fake(t testing.TB, partitions int32) (*kfake.Cluster, bus.Config, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kc := bus.Config{Brokers: c.ListenAddrs(), Partitions: partitions, ReplicationFactor: 1, ClientID: "recon-test"}
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, cl, kc); err != nil {
		t.Fatal(err)
	}
	return c, kc, cl
}
