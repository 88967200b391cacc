package service

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/schemas"
	"github.com/reconhq/recon/store"
)

// route is stage one: bank transactions keyed by account and direction
// (recon.PartitionKey) → identity (matcher/identity.go) and the
// matching cascade → routed records keyed by loan, decisions for what is
// not booked, and the dedup changelog, all in one transaction per poll.
func (s *Service) route(ctx context.Context) error {
	pollCtx, wake := context.WithCancel(ctx)
	defer wake()
	routers := newStates[*matcher.Router](wake, &s.routeHeld)
	assigned, revoked := routers.callbacks(s, stageState[*matcher.Router]{
		stage: stageRoute, input: schemas.TopicBankTransactions, changelog: schemas.TopicDedupChangelog,
		fresh: func() *matcher.Router {
			r := matcher.NewRouter(s.loans)
			r.OwnAccounts, r.LoanReference = s.cfg.OwnAccounts, s.cfg.LoanReference
			return r
		},
		open: func(r *matcher.Router, part *store.Part) error { r.Open(part); return nil },
		restore: func(r *matcher.Router, rec *kgo.Record) error {
			var seen matcher.Seen
			if err := bus.Unmarshal(rec.Value, &seen); err != nil {
				return fmt.Errorf("dedup changelog %s: %w", bus.Where(rec), err)
			}
			r.Remember(string(rec.Key), seen)
			return nil
		},
	})
	sess, err := s.session("recon-matcher-route", schemas.TopicBankTransactions, assigned, revoked)
	if err != nil {
		return err
	}
	defer sess.Close()
	for {
		fs := sess.PollRecords(pollCtx, s.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			return nil
		}
		if routers.unrestored.Load() {
			return errNotRestored
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("route: poll: %w", err)
		}
		if fs.Empty() {
			continue
		}
		if !s.waitLoans(ctx) {
			return nil
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("route: begin: %w", err)
		}
		b := &batch{n: s.cfg.Kafka.Partitions}
		decideStart := time.Now()
		now := s.cfg.Now().UTC()
		routers.mu.Lock()
		s.mu.RLock()
		var missing error
		fs.EachRecord(func(r *kgo.Record) {
			rt := routers.byPart[r.Partition]
			if rt == nil {
				missing = fmt.Errorf("route: no state for partition %d", r.Partition)
				return
			}
			s.routeOne(rt, r, b, now)
		})
		s.mu.RUnlock()
		if missing == nil {
			missing = routers.storeErr(nil)
		}
		if missing != nil {
			routers.mu.Unlock()
			_, _ = sess.End(ctx, kgo.TryAbort)
			return missing
		}
		held, mark := maps.Clone(routers.parts), routers.mark
		routers.mu.Unlock()
		s.m.phase.WithLabelValues("route", "decide").Observe(time.Since(decideStart).Seconds())
		if err := s.commit(ctx, sess, b, "route"); err != nil {
			return err
		}
		// the transaction is committed: the local state may now say so
		if err := commitParts(held, mark, b.recs); err != nil {
			return err
		}
		s.m.records.WithLabelValues("route").Add(float64(len(fs.Records())))
	}
}

func (s *Service) routeOne(rt *matcher.Router, r *kgo.Record, b *batch, now time.Time) {
	var t recon.BankTransaction
	err := bus.Unmarshal(r.Value, &t)
	if err == nil && (t.Type == recon.TypeReturn || t.Type == recon.TypeStatus) {
		// pacs.004 returns and pain.002/pacs.002 statuses settle expected
		// items (package collect); the money of a return posts from the
		// bank's debit entry, which carries its reason.
		return
	}
	if err == nil {
		err = validate(t)
	}
	if err != nil {
		e, dl := deadLetter(r, "route", err, now)
		b.add(e, dl)
		s.m.decisions.WithLabelValues("dead_letter").Inc()
		return
	}
	if t.Type != "" && t.Type != recon.TypeTransaction {
		e, dl := deadLetter(r, "route", fmt.Errorf("record type %q is not a bank transaction", t.Type), now)
		b.add(e, dl)
		return
	}
	d, routed, seen := rt.Route(t)
	if seen != nil { // a new movement, or one that gained references: the changelog keeps it
		b.add(bus.Event{Topic: schemas.TopicDedupChangelog, Key: seen.ID, Type: "dev.recon.dedup.v1", ID: seen.ID, Source: "recon/matcher", Time: now, Partition: r.Partition}, seen)
	}
	if routed == nil {
		d.DecidedAt = now
		b.add(bus.Event{Topic: schemas.TopicMatches, Key: t.ID, Type: schemas.TypeDecision, ID: "d-" + bus.Where(r), Source: "recon/matcher", Time: now, Partition: -1}, d)
		s.m.decisions.WithLabelValues(string(d.Outcome)).Inc()
		return
	}
	id := "r-" + t.ID
	if routed.Kind == matcher.KindConflict { // a review item: no money
		id = "r-" + routed.ItemID
	}
	b.add(bus.Event{Topic: schemas.TopicRouted, Key: routed.Key, Type: schemas.TypeRouted, ID: id, Source: "recon/matcher", Time: now, Partition: -1}, routed)
}

// validate checks what the matcher relies on; anything else is ingest's.
func validate(t recon.BankTransaction) error {
	switch {
	case t.ID == "":
		return fmt.Errorf("bank transaction without id")
	case t.Direction != recon.Credit && t.Direction != recon.Debit:
		return fmt.Errorf("transaction %s: direction %q is not credit or debit", t.ID, t.Direction)
	case !t.Amount.IsPositive():
		return fmt.Errorf("transaction %s: amount %s is not positive", t.ID, t.Amount)
	case len(t.Currency) != 3:
		return fmt.Errorf("transaction %s: currency %q is not an ISO 4217 code", t.ID, t.Currency)
	case t.AccountIBAN == "":
		return fmt.Errorf("transaction %s: no account_iban", t.ID)
	}
	return checkIdentity(t)
}

// idForm is the form of a sighting's identity key: a key of recon.IdentityKey
// or recon.SightingKey, or a file's charge or remainder record of one.
var idForm = regexp.MustCompile(`^bt_[0-9a-f]{24}(:charges|:remainder)?$`)

// checkIdentity recomputes what it can of a sighting's identity, so that a
// producer writing straight to Kafka cannot post the same money twice under
// two ids, or two payments under one: the id must be recon.IdentityKey of
// its references, or, without any, recon.SightingKey of its producer_id.
// A record of a bank file (message_id set) is checked for form only: the
// reader names an entry without references by its position in the file,
// which the record does not carry.
func checkIdentity(t recon.BankTransaction) error {
	if !idForm.MatchString(t.ID) {
		return fmt.Errorf("transaction %q: the id is not an identity key (bt_ and 24 hex digits, as recon.IdentityKey gives): publish through POST /v1/bank/transactions, or compute it as recon does", t.ID)
	}
	if t.MessageID != "" {
		return nil
	}
	if want := recon.IdentityKey(t); want != "" {
		if t.ID != want {
			return fmt.Errorf("transaction %s: the id disagrees with its references (recon.IdentityKey gives %s): publish through POST /v1/bank/transactions, or compute it as recon does", t.ID, want)
		}
		return nil
	}
	if t.ProducerID != "" && t.ID == recon.SightingKey(t.AccountIBAN, t.Direction, "producer", t.ProducerID) {
		return nil
	}
	return fmt.Errorf("transaction %s: no reference (bank_reference, end_to_end_id, transaction_id, entry_reference) and no producer_id to name it by", t.ID)
}
