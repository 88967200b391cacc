package alerts

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reconhq/recon"
)

// The alerts state lives on a compacted topic (schemas.TopicAlertsState),
// one key per thing it is about, so that restoring it reads what is live
// (rules, firing or resolved subjects, unpaid instalments, deliveries not
// yet evicted) and never the history that led there. Every key starts with
// "<instance>/" (FeedConfig.Instance), then:
//
//	rule/<rule>                  the rule's own fields (suspense age, return-rate buckets, statements, ring position)
//	edge/<rule>/<subject>        one subject's edge: firing or not, its edge number
//	unpaid/<rule>/<subject>      an unpaid instalment (instalment_overdue); deleted once paid
//	seen/<rule>/<slot>           one slot of the ring of ids that fired (large_credit, expected_overdue)
//	delivery/<alert>/<endpoint>  a delivery with its attempts and body; deleted when the history evicts it
//	gone/<endpoint>              an endpoint a 410 disabled; deleted when re-enabled
//	recent/<slot>                one of the last maxRecent alerts, for GET /v1/alerts
//	offset/<topic>/<partition>   the next input offset the state reflects (the feed's)
//
// Rule names and endpoint names cannot hold a "/" (nameRE); subjects and
// alert ids are read as the rest of the key.
const (
	keyRule     = "rule/"
	keyEdge     = "edge/"
	keyUnpaid   = "unpaid/"
	keySeen     = "seen/"
	keyDelivery = "delivery/"
	keyGone     = "gone/"
	keyRecent   = "recent/"
	keyOffset   = "offset/"
)

// StateRecord is one key of the alerts state; a nil Value deletes the key.
type StateRecord struct {
	Key   string
	Value []byte
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("alerts: state does not marshal: %v", err)) // a bug
	}
	return b
}

// ruleCore is what rule/<rule> holds: a rule's state but its edges,
// unpaid instalments and seen ids, which have keys of their own.
type ruleCore struct {
	Oldest     time.Time            `json:"oldest,omitzero"`
	SeenNext   int                  `json:"seen_next,omitempty"`
	Buckets    map[int64]*bucket    `json:"buckets,omitempty"`
	Statements map[string]*stmtMark `json:"statements,omitempty"`
	Dropped    int64                `json:"dropped,omitempty"`
}

// changes returns the engine's keys changed since the last call (all of
// them after a Restore) and forgets the marks.
func (e *Engine) changes() []StateRecord {
	all := e.all
	e.all = false
	var out []StateRecord
	for _, r := range e.rules {
		rs := e.st.Rules[r.Name]
		if rs.dirty || all {
			core := ruleCore{Oldest: rs.Oldest, SeenNext: rs.SeenNext, Buckets: rs.Buckets, Statements: rs.Statements, Dropped: rs.Dropped}
			out = append(out, StateRecord{Key: keyRule + r.Name, Value: mustJSON(core)})
		}
		edges, unpaid, seen := rs.dirtyEdges, rs.dirtyUnpaid, rs.dirtySeen
		if all {
			edges, unpaid, seen = map[string]bool{}, map[string]bool{}, map[int]bool{}
			for s := range rs.Edges {
				edges[s] = true
			}
			for s := range rs.Unpaid {
				unpaid[s] = true
			}
			for i := range rs.Seen {
				seen[i] = true
			}
		}
		for _, subject := range sortedKeys(edges) {
			out = append(out, StateRecord{Key: keyEdge + r.Name + "/" + subject, Value: mustJSON(rs.Edges[subject])})
		}
		for _, subject := range sortedKeys(unpaid) {
			rec := StateRecord{Key: keyUnpaid + r.Name + "/" + subject}
			if u, ok := rs.Unpaid[subject]; ok {
				rec.Value = mustJSON(u)
			}
			out = append(out, rec)
		}
		for _, slot := range slices.Sorted(mapKeys(seen)) {
			out = append(out, StateRecord{Key: keySeen + r.Name + "/" + strconv.Itoa(slot), Value: mustJSON(rs.Seen[slot])})
		}
		rs.dirty, rs.dirtyEdges, rs.dirtyUnpaid, rs.dirtySeen = false, nil, nil, nil
	}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// restoreKey applies one engine key (rule/, edge/, unpaid/, seen/) of the
// state topic. It reports false for a key of a rule no longer configured,
// which the caller deletes.
func (e *Engine) restoreKey(key string, v []byte) (bool, error) {
	kind, rest, _ := strings.Cut(key, "/")
	name, sub, _ := strings.Cut(rest, "/")
	rs := e.st.Rules[name]
	if rs == nil {
		return false, nil
	}
	var err error
	switch kind + "/" {
	case keyRule:
		var c ruleCore
		if err = json.Unmarshal(v, &c); err == nil {
			rs.Oldest, rs.SeenNext, rs.Buckets, rs.Statements, rs.Dropped = c.Oldest, c.SeenNext, c.Buckets, c.Statements, c.Dropped
		}
	case keyEdge:
		var ed edge
		if err = json.Unmarshal(v, &ed); err == nil {
			if rs.Edges == nil {
				rs.Edges = map[string]*edge{}
			}
			rs.Edges[sub] = &ed
		}
	case keyUnpaid:
		var u unpaid
		if err = json.Unmarshal(v, &u); err == nil {
			if rs.Unpaid == nil {
				rs.Unpaid = map[string]*unpaid{}
			}
			rs.Unpaid[sub] = &u
		}
	case keySeen:
		var id string
		slot, perr := strconv.Atoi(sub)
		if perr != nil || slot < 0 || slot >= maxSeen {
			return false, nil // not a slot of this version: delete it
		}
		if err = json.Unmarshal(v, &id); err == nil {
			if slot >= len(rs.Seen) {
				rs.Seen = append(rs.Seen, make([]string, slot+1-len(rs.Seen))...)
			}
			rs.Seen[slot] = id
			rs.seen = nil // rebuilt from Seen when first needed
		}
	default:
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("alerts: restore %s: %w", key, err)
	}
	return true, nil
}

// deliveryStateKey is the state-topic key of a delivery.
func deliveryStateKey(alertID, endpoint string) string {
	return keyDelivery + alertID + "/" + endpoint
}

// changes returns the deliveries and disabled endpoints changed since the
// last call (deleted ones as tombstones) and the dead letters raised
// meanwhile, and forgets them.
func (d *Dispatcher) changes() ([]StateRecord, []recon.DeadLetter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []StateRecord
	for _, key := range sortedKeys(d.changed) {
		alertID, endpoint, _ := strings.Cut(key, " ")
		rec := StateRecord{Key: deliveryStateKey(alertID, endpoint)}
		if dl, ok := d.deliveries[key]; ok {
			rec.Value = mustJSON(dl)
		}
		out = append(out, rec)
	}
	for _, name := range sortedKeys(d.changedGone) {
		rec := StateRecord{Key: keyGone + name}
		if why, ok := d.gone[name]; ok {
			rec.Value = mustJSON(why)
		}
		out = append(out, rec)
	}
	dead := d.dead
	d.changed, d.changedGone, d.dead = map[string]bool{}, map[string]bool{}, nil
	return out, dead
}

// restoreKey applies one dispatcher key (delivery/, gone/) of the state
// topic; call it before Run, then restored.
func (d *Dispatcher) restoreKey(key string, v []byte) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case strings.HasPrefix(key, keyDelivery):
		var dl Delivery
		if err := json.Unmarshal(v, &dl); err != nil {
			return false, fmt.Errorf("alerts: restore %s: %w", key, err)
		}
		if old, ok := d.deliveries[deliveryKey(dl.AlertID, dl.Endpoint)]; ok {
			*old = dl
			old.index = -1
			return true, nil
		}
		dl.index = -1
		d.add(&dl)
	case strings.HasPrefix(key, keyGone):
		var why string
		if err := json.Unmarshal(v, &why); err != nil {
			return false, fmt.Errorf("alerts: restore %s: %w", key, err)
		}
		d.gone[strings.TrimPrefix(key, keyGone)] = why
	default:
		return false, nil
	}
	return true, nil
}

// restored rebuilds the queue and the eviction order from the restored
// deliveries: pending ones resume their schedule, finished ones are
// evicted oldest first.
func (d *Dispatcher) restored() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue, d.pending, d.done = nil, 0, nil
	clear(d.changed) // what was read back needs no writing
	var finished []*Delivery
	for _, dl := range d.deliveries {
		if dl.State == DeliveryPending {
			d.pending++
			heap.Push(&d.queue, dl)
			continue
		}
		finished = append(finished, dl)
	}
	slices.SortFunc(finished, func(a, b *Delivery) int {
		if c := finishedAt(a).Compare(finishedAt(b)); c != 0 {
			return c
		}
		return strings.Compare(deliveryKey(a.AlertID, a.Endpoint), deliveryKey(b.AlertID, b.Endpoint))
	})
	for _, dl := range finished {
		d.done = append(d.done, deliveryKey(dl.AlertID, dl.Endpoint))
	}
}

func finishedAt(dl *Delivery) time.Time {
	if n := len(dl.Attempts); n > 0 {
		return dl.Attempts[n-1].At
	}
	return dl.Created
}

// recentRecord is what recent/<slot> holds.
type recentRecord struct {
	Seq   uint64      `json:"seq"`
	Alert recon.Alert `json:"alert"`
}

// Changes returns the state keys changed since the last call — engine,
// deliveries, recent alerts — and the dead letters of deliveries given up
// meanwhile, for the caller to write in one transaction with the alerts
// they accompany.
func (s *Service) Changes() ([]StateRecord, []recon.DeadLetter) {
	s.mu.Lock()
	out := s.engine.changes()
	for _, slot := range slices.Sorted(mapKeys(s.recentDirty)) {
		out = append(out, StateRecord{Key: keyRecent + strconv.Itoa(slot), Value: s.recentDirty[slot]})
	}
	clear(s.recentDirty)
	s.mu.Unlock()
	recs, dead := s.disp.changes()
	return append(out, recs...), dead
}

// RestoreState loads the state read from the state topic, latest value per
// key (offset/ keys are the feed's and are skipped). Call it before Run.
// It returns the keys it has no use for (rules no longer configured), for
// the caller to delete.
func (s *Service) RestoreState(state map[string][]byte) (stale []string, err error) {
	var recent []recentRecord
	for _, key := range sortedKeys(state) {
		v := state[key]
		known := true
		switch {
		case strings.HasPrefix(key, keyOffset):
		case strings.HasPrefix(key, keyRecent):
			var r recentRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return nil, fmt.Errorf("alerts: restore %s: %w", key, err)
			}
			recent = append(recent, r)
		case strings.HasPrefix(key, keyDelivery), strings.HasPrefix(key, keyGone):
			known, err = s.disp.restoreKey(key, v)
		default:
			s.mu.Lock()
			known, err = s.engine.restoreKey(key, v)
			s.mu.Unlock()
		}
		if err != nil {
			return nil, err
		}
		if !known {
			stale = append(stale, key)
		}
	}
	s.disp.restored()
	slices.SortFunc(recent, func(a, b recentRecord) int { return cmpUint(a.Seq, b.Seq) })
	s.mu.Lock()
	s.recent = nil
	clear(s.byID)
	s.mu.Unlock()
	for _, r := range recent {
		s.rememberSeq(r.Alert, r.Seq)
	}
	return stale, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
