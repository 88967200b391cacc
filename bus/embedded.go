package bus

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded starts the in-process Kafka-protocol broker that `recon run`
// uses when no broker is configured. Its log is persisted under dir, so a
// restart keeps every topic; it listens on 127.0.0.1:port so outside
// producers (kcat, any client) can publish to it. Close it with Close.
func Embedded(dir string, port int, partitions int32) (*kfake.Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded kafka: data dir: %w", err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dir),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.ClusterID("recon-embedded"),
		kfake.SyncWrites(),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on 127.0.0.1:%d: %w", port, err)
	}
	return c, nil
}
