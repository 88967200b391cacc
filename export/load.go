package export

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// MaxEntries bounds one export's read of the journal.
const MaxEntries = 5_000_000

// Load reads the whole journal (every partition, up to its last stable
// offset) and returns its entries, each id once.
func Load(ctx context.Context, c bus.Config) ([]recon.Entry, error) {
	parts := bus.Partitions(c.Partitions)
	var out []recon.Entry
	seen := map[string]bool{}
	_, err := bus.Replay(ctx, c, schemas.TopicLedgerEntries, parts, func(r *kgo.Record) error {
		var e recon.Entry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return fmt.Errorf("export: journal record %s: %w", bus.Where(r), err)
		}
		if seen[e.ID] {
			return nil
		}
		if len(out) == MaxEntries {
			return fmt.Errorf("export: journal has more than MaxEntries (%d) entries; export a shorter period from a ClickHouse view instead", MaxEntries)
		}
		seen[e.ID] = true
		out = append(out, e)
		return nil
	})
	return out, err
}
