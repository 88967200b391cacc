package alerts

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

// observe applies one event to one rule.
func (e *Engine) observe(out []recon.Alert, r *rule, rs *ruleState, now time.Time, ev Event) []recon.Alert {
	switch ev := ev.(type) {
	case BalanceChanged:
		if (r.Kind == BalanceBelow || r.Kind == BalanceAbove) && ev.Account == r.Account && ev.Currency == r.Currency {
			return balance(out, r, rs, now, ev)
		}
	case TransactionSeen:
		if r.Kind == LargeCredit {
			return largeCredit(out, r, rs, now, ev)
		}
	case SuspenseState:
		if r.Currency != "" && ev.Currency != r.Currency {
			return out
		}
		switch r.Kind {
		case SuspenseAmount:
			a := recon.Alert{At: now, Value: ev.Total, Threshold: r.threshold, Currency: ev.Currency}
			msg := func() string {
				return fmt.Sprintf("suspense holds %s %s in %d items (threshold %s)", ev.Total, ev.Currency, ev.Count, r.threshold)
			}
			cond := ev.Total.GreaterThanOrEqual(r.threshold)
			clear := ev.Total.LessThan(r.threshold.Sub(r.hysteresis))
			return transition(out, r, rs, "suspense", cond, clear, a, msg)
		case SuspenseAge:
			if !rs.Oldest.Equal(ev.Oldest) {
				rs.Oldest = ev.Oldest
				rs.touch()
			}
			return suspenseAge(out, r, rs, now)
		}
	case DirectDebitSeen:
		if r.Kind == ReturnRate {
			b := rs.bucket(r, now)
			if ev.Return {
				b.Returns++
			} else {
				b.Collections++
			}
			return returnRate(out, r, rs, now)
		}
	case StatementReceived:
		switch r.Kind {
		case StatementMissing:
			if ev.Account == r.Account {
				rs.mark(ev)
				return statementMissing(out, r, rs, now)
			}
		case StatementBreak:
			if r.Account == "" || ev.Account == r.Account {
				return statementBreak(out, r, rs, now, ev)
			}
		}
	case InstalmentStatus:
		if r.Kind == InstalmentOverdue && (r.Subject == "" || r.Subject == ev.LoanID) {
			return instalment(out, r, rs, now, ev)
		}
	case ExpectedChanged:
		if r.Kind == ExpectedOverdue {
			return expectedOverdue(out, r, rs, now, ev.Expected)
		}
	default:
		panic(fmt.Sprintf("alerts: unknown event type %T", ev)) // a bug in the caller
	}
	return out
}

// tick evaluates one time-based rule.
func (e *Engine) tick(out []recon.Alert, r *rule, rs *ruleState, now time.Time) []recon.Alert {
	switch r.Kind {
	case SuspenseAge:
		return suspenseAge(out, r, rs, now)
	case ReturnRate:
		return returnRate(out, r, rs, now)
	case StatementMissing:
		return statementMissing(out, r, rs, now)
	case InstalmentOverdue:
		n := len(out)
		for subject, u := range rs.Unpaid {
			out = instalmentEdge(out, r, rs, now, subject, u)
		}
		// map order is random; the engine's output must not be
		slices.SortFunc(out[n:], func(a, b recon.Alert) int { return cmp.Compare(a.ID, b.ID) })
	}
	return out
}

func balance(out []recon.Alert, r *rule, rs *ruleState, now time.Time, ev BalanceChanged) []recon.Alert {
	a := recon.Alert{At: now, Value: ev.Balance, Threshold: r.threshold, Currency: ev.Currency}
	var cond, clear bool
	side := "below"
	if r.Kind == BalanceBelow {
		cond = ev.Balance.LessThan(r.threshold)
		clear = ev.Balance.GreaterThanOrEqual(r.threshold.Add(r.hysteresis))
	} else {
		side = "above"
		cond = ev.Balance.GreaterThan(r.threshold)
		clear = ev.Balance.LessThanOrEqual(r.threshold.Sub(r.hysteresis))
	}
	msg := func() string {
		return fmt.Sprintf("balance of %s is %s %s, %s %s", ev.Account, ev.Balance, ev.Currency, side, r.threshold)
	}
	return transition(out, r, rs, ev.Account, cond, clear, a, msg)
}

// largeCredit fires once per transaction id and never resolves: a single
// credit is an event, not a condition.
func largeCredit(out []recon.Alert, r *rule, rs *ruleState, now time.Time, ev TransactionSeen) []recon.Alert {
	if ev.Direction != recon.Credit || ev.Currency != r.Currency || ev.Amount.LessThan(r.threshold) ||
		(r.Account != "" && ev.Account != r.Account) || ev.ID == "" || len(ev.ID) > maxSubjectBytes {
		return out
	}
	if !rs.firstSight(ev.ID) {
		return out
	}
	return append(out, recon.Alert{
		ID: alertID(r.Name, ev.ID, 1), Rule: r.Name, Kind: string(r.Kind), State: StateFiring,
		Subject: ev.ID, Value: ev.Amount, Threshold: r.threshold, Currency: ev.Currency, At: now,
		Message: fmt.Sprintf("firing: credit %s of %s %s (threshold %s)", ev.ID, ev.Amount, ev.Currency, r.threshold),
	})
}

// firstSight reports whether id has not fired yet, and remembers it in a
// ring of the last maxSeen ids.
func (rs *ruleState) firstSight(id string) bool {
	if rs.seen == nil {
		rs.seen = make(map[string]bool, len(rs.Seen))
		for _, id := range rs.Seen {
			rs.seen[id] = true
		}
	}
	if rs.seen[id] {
		return false
	}
	rs.seen[id] = true
	if len(rs.Seen) < maxSeen {
		rs.Seen = append(rs.Seen, id)
		rs.touchSeen(len(rs.Seen) - 1)
	} else { // a ring: overwrite the oldest
		delete(rs.seen, rs.Seen[rs.SeenNext])
		rs.Seen[rs.SeenNext] = id
		rs.touchSeen(rs.SeenNext)
		rs.SeenNext = (rs.SeenNext + 1) % maxSeen
	}
	return true
}

func suspenseAge(out []recon.Alert, r *rule, rs *ruleState, now time.Time) []recon.Alert {
	var age time.Duration
	if !rs.Oldest.IsZero() {
		age = now.Sub(rs.Oldest)
	}
	a := recon.Alert{At: now, Value: decimal.NewFromInt(int64(age / time.Second)),
		Threshold: decimal.NewFromInt(int64(r.age / time.Second))}
	msg := func() string {
		return fmt.Sprintf("oldest suspense item is %s old (limit %s)", age.Truncate(time.Second), r.age)
	}
	cond := !rs.Oldest.IsZero() && age >= r.age
	return transition(out, r, rs, "suspense", cond, !cond, a, msg)
}

// bucket returns the return_rate bucket for now, dropping those that left
// the window.
func (rs *ruleState) bucket(r *rule, now time.Time) *bucket {
	rs.prune(r, now)
	idx := now.UnixNano() / int64(r.window/returnBuckets)
	b := rs.Buckets[idx]
	if b == nil {
		b = &bucket{}
		rs.Buckets[idx] = b
	}
	rs.touch() // the caller counts in it
	return b
}

func (rs *ruleState) prune(r *rule, now time.Time) {
	if rs.Buckets == nil {
		rs.Buckets = map[int64]*bucket{}
	}
	idx := now.UnixNano() / int64(r.window/returnBuckets)
	for k := range rs.Buckets {
		if k <= idx-returnBuckets {
			delete(rs.Buckets, k)
			rs.touch()
		}
	}
}

// returnRate compares returns*100 with threshold*collections, so no
// division decides anything; the reported value is rounded to 2 places.
func returnRate(out []recon.Alert, r *rule, rs *ruleState, now time.Time) []recon.Alert {
	rs.prune(r, now)
	var c, n int64
	for _, b := range rs.Buckets {
		c += b.Collections
		n += b.Returns
	}
	coll, rets := decimal.NewFromInt(c), decimal.NewFromInt(n*100)
	cond := c >= int64(r.MinCount) && rets.GreaterThanOrEqual(r.threshold.Mul(coll))
	clear := c == 0 || rets.LessThan(r.threshold.Sub(r.hysteresis).Mul(coll))
	a := recon.Alert{At: now, Threshold: r.threshold, Value: decimal.Zero}
	if c > 0 {
		a.Value = rets.DivRound(coll, 2) // shown only; decisions use the products above
	}
	msg := func() string {
		return fmt.Sprintf("direct-debit returns %d of %d collections over %s = %s%% (threshold %s%%)", n, c, r.window, a.Value, r.threshold)
	}
	return transition(out, r, rs, "direct-debits", cond, clear, a, msg)
}

func (rs *ruleState) mark(ev StatementReceived) *stmtMark {
	if rs.Statements == nil {
		rs.Statements = map[string]*stmtMark{}
	}
	m := rs.Statements[ev.Account]
	if m == nil {
		m = &stmtMark{}
		rs.Statements[ev.Account] = m
	}
	if ev.Date > m.Date {
		m.Date, m.Closing = ev.Date, ev.Closing
		rs.touch()
	}
	return m
}

// expectedDate is the latest statement date whose deadline (that date plus
// r.Days, at r.At local time) has passed at now.
func expectedDate(r *rule, now time.Time) recon.Date {
	local := now.In(r.loc)
	back := r.Days
	if local.Hour()*60+local.Minute() < r.atMinutes {
		back++
	}
	return recon.Date(local.AddDate(0, 0, -back).Format(time.DateOnly))
}

func statementMissing(out []recon.Alert, r *rule, rs *ruleState, now time.Time) []recon.Alert {
	var last recon.Date
	if m := rs.Statements[r.Account]; m != nil {
		last = m.Date
	}
	want := expectedDate(r, now)
	cond := last < want
	a := recon.Alert{At: now, Value: decimal.Zero, Threshold: decimal.Zero}
	msg := func() string {
		if !cond {
			return fmt.Sprintf("statement of %s for %s received", r.Account, last)
		}
		return fmt.Sprintf("statement of %s for %s not received by %s %s (last %q)", r.Account, want, r.At, r.loc, last)
	}
	return transition(out, r, rs, r.Account, cond, !cond, a, msg)
}

// statementBreak fires when a statement's own arithmetic fails or its
// opening balance is not the previous statement's closing balance; the
// next statement that is sound resolves it.
func statementBreak(out []recon.Alert, r *rule, rs *ruleState, now time.Time, ev StatementReceived) []recon.Alert {
	var prev stmtMark
	if m := rs.Statements[ev.Account]; m != nil {
		prev = *m
	}
	a := recon.Alert{At: now, Value: decimal.Zero, Threshold: r.threshold, Currency: ev.Currency}
	broken := false
	if ev.Check == "mismatch" {
		broken = true
		a.Message = fmt.Sprintf("statement of %s dated %s does not balance", ev.Account, ev.Date)
	}
	if ev.Date > prev.Date && prev.Closing != nil && ev.Opening != nil {
		diff := ev.Opening.Sub(*prev.Closing)
		if diff.Abs().GreaterThan(r.threshold) {
			broken = true
			a.Value = diff
			a.Message = fmt.Sprintf("statement of %s dated %s opens at %s, previous (%s) closed at %s",
				ev.Account, ev.Date, ev.Opening, prev.Date, prev.Closing)
		}
	}
	if ev.Date < prev.Date || (ev.Date == prev.Date && !broken) {
		return out // a replayed or same-day statement neither breaks nor heals the chain
	}
	rs.mark(ev)
	if a.Message == "" {
		a.Message = fmt.Sprintf("statement of %s dated %s balances and chains", ev.Account, ev.Date)
	}
	return transition(out, r, rs, ev.Account, broken, !broken, a, nil)
}

func instalment(out []recon.Alert, r *rule, rs *ruleState, now time.Time, ev InstalmentStatus) []recon.Alert {
	subject := ev.LoanID + "/" + string(ev.DueDate)
	if len(subject) > maxSubjectBytes || !ev.DueDate.Valid() {
		return out
	}
	if rs.Unpaid == nil {
		rs.Unpaid = map[string]*unpaid{}
	}
	u := &unpaid{LoanID: ev.LoanID, DueDate: ev.DueDate, Outstanding: ev.Outstanding, Currency: ev.Currency}
	if ev.Outstanding.GreaterThan(r.threshold) && ev.Outstanding.IsPositive() {
		if _, ok := rs.Unpaid[subject]; !ok && len(rs.Unpaid) >= maxInstalments {
			rs.Dropped++
			rs.touch()
			return out
		}
		if old, ok := rs.Unpaid[subject]; !ok || !old.equal(u) {
			rs.Unpaid[subject] = u
			rs.touchUnpaid(subject)
		}
		return instalmentEdge(out, r, rs, now, subject, rs.Unpaid[subject])
	}
	if _, ok := rs.Unpaid[subject]; ok {
		delete(rs.Unpaid, subject)
		rs.touchUnpaid(subject)
	}
	out = instalmentEdge(out, r, rs, now, subject, nil)
	return out
}

func (u *unpaid) equal(v *unpaid) bool {
	return u.LoanID == v.LoanID && u.DueDate == v.DueDate && u.Outstanding.Equal(v.Outstanding) && u.Currency == v.Currency
}

// instalmentEdge evaluates one instalment; u is nil once it is paid.
func instalmentEdge(out []recon.Alert, r *rule, rs *ruleState, now time.Time, subject string, u *unpaid) []recon.Alert {
	cond := false
	a := recon.Alert{At: now, Threshold: r.threshold, Value: decimal.Zero}
	msg := func() string { return fmt.Sprintf("instalment %s paid", subject) }
	if u != nil {
		// overdue once the due date and r.Days more days have ended, local
		// time: the due date is at most today - Days - 1 (dates sort as text)
		cond = string(u.DueDate) <= now.In(r.loc).AddDate(0, 0, -r.Days-1).Format(time.DateOnly)
		a.Value, a.Currency = u.Outstanding, u.Currency
		msg = func() string {
			return fmt.Sprintf("loan %s: instalment due %s has %s %s outstanding %d days after due", u.LoanID, u.DueDate, u.Outstanding, u.Currency, r.Days)
		}
	}
	return transition(out, r, rs, subject, cond, !cond, a, msg)
}

// expectedOverdue fires once per expected payment, when the tracker
// publishes it overdue, and never resolves: settling late is the end of
// that story, not the healing of a condition. The id depends only on the
// rule and the item's end-to-end id, so a redelivered record, even one the
// ring has forgotten, gives the same alert: the dispatcher does not send it
// again, and on the alerts topic it is the same key.
func expectedOverdue(out []recon.Alert, r *rule, rs *ruleState, now time.Time, x recon.Expected) []recon.Alert {
	if x.Status != recon.ExpectedOverdue || x.ID == "" || len(x.ID) > maxSubjectBytes ||
		(r.Currency != "" && x.Currency != r.Currency) || (r.Subject != "" && x.LoanID != r.Subject) ||
		x.Amount.LessThan(r.threshold) {
		return out
	}
	if !rs.firstSight(x.ID) {
		return out
	}
	return append(out, recon.Alert{
		ID: alertID(r.Name, x.ID, 1), Rule: r.Name, Kind: string(r.Kind), State: StateFiring,
		Subject: x.ID, Value: x.Amount, Threshold: r.threshold, Currency: x.Currency, At: now, Expected: &x,
		Message: fmt.Sprintf("firing: %s %s of loan %s: %s %s requested for %s, not settled within %d days",
			x.Kind, x.ID, x.LoanID, x.Amount, x.Currency, x.RequestedDate, x.WindowDays),
	})
}
