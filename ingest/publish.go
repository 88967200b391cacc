package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/bus"
)

// DefaultMaxRecordBytes is the largest record ingest produces, headers and
// batch overhead included: under franz-go's default ProducerBatchMaxBytes
// (1,000,012) and Kafka's default message.max.bytes (1,048,588), so a record
// that passes this check is not refused for its size by either.
const DefaultMaxRecordBytes = 1_000_000

// recordBytes is a record's size in a batch of its own, over-estimated:
// batch header (61), record framing and varints, header framing.
func recordBytes(r *kgo.Record) int {
	n := 61 + 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

func (in *Ingest) maxRecordBytes() int {
	if in.MaxRecordBytes > 0 {
		return in.MaxRecordBytes
	}
	return DefaultMaxRecordBytes
}

// tooLarge says why r cannot be a Kafka record, or "".
func (in *Ingest) tooLarge(r *kgo.Record) string {
	if n, limit := recordBytes(r), in.maxRecordBytes(); n > limit {
		return fmt.Sprintf("record of %d bytes is larger than the %d-byte Kafka record limit (shorten its longest text)", n, limit)
	}
	return ""
}

// permanent reports whether a produce error is about the record itself, so
// sending it again cannot help.
func permanent(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) || errors.Is(err, kerr.InvalidRecord)
}

// ItemError is one item of a batch that was not stored.
type ItemError struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
	// Retry: the failure was Kafka's, not the item's; send it again.
	Retry bool `json:"retry"`
}

// BatchError is a batch stored in part: Stored lists the indexes of the
// items durably in Kafka, Refused the others and why.
type BatchError struct {
	Stored  []int
	Refused []ItemError
}

func (e *BatchError) Error() string {
	reasons := make([]string, 0, min(len(e.Refused), 3))
	for _, r := range e.Refused[:min(len(e.Refused), 3)] {
		reasons = append(reasons, fmt.Sprintf("item[%d]: %s", r.Index, r.Reason))
	}
	return fmt.Sprintf("%d items stored, %d not: %s", len(e.Stored), len(e.Refused), strings.Join(reasons, "; "))
}

// publish produces one record per item (evs[i] is item i, named what[i]
// in errors) with the shared idempotent producer and says exactly what was
// stored: nil when all; a *BatchError when some; an *InputError when none
// and every failure was the records' own (too large); else ErrUnavailable.
func (in *Ingest) publish(ctx context.Context, evs []bus.Event) error {
	recs := make([]*kgo.Record, len(evs))
	index := make(map[*kgo.Record]int, len(evs))
	for i, e := range evs {
		recs[i] = e.Record(in.kafka.Partitions)
		index[recs[i]] = i
	}
	var stored []int
	var refused []ItemError
	transient := false
	for _, res := range in.cl.ProduceSync(ctx, recs...) {
		i := index[res.Record]
		switch {
		case res.Err == nil:
			stored = append(stored, i)
		case permanent(res.Err):
			refused = append(refused, ItemError{Index: i, Reason: "refused by Kafka: " + res.Err.Error()})
		default:
			transient = true
			refused = append(refused, ItemError{Index: i, Reason: "not stored: " + res.Err.Error(), Retry: true})
		}
	}
	switch {
	case len(refused) == 0:
		return nil
	case len(stored) > 0:
		sortItems(stored, refused)
		return &BatchError{Stored: stored, Refused: refused}
	case transient:
		return fmt.Errorf("%w: %s", ErrUnavailable, refused[0].Reason)
	}
	sortItems(stored, refused)
	return &InputError{Where: fmt.Sprintf("item[%d]", refused[0].Index), Reason: refused[0].Reason}
}

func sortItems(stored []int, refused []ItemError) {
	slices.Sort(stored)
	slices.SortFunc(refused, func(a, b ItemError) int { return a.Index - b.Index })
}
