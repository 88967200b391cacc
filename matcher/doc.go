// Package matcher decides where every bank transaction ends: posted to its
// loan, parked in suspense with the reason, or recognised as a duplicate.
// It is pure and deterministic: no I/O, no clock, no Kafka. Two stages run
// over it: the Router (keyed by account and direction) recognises sightings
// of one movement (identity.go) and runs the matching cascade (route.go);
// the Poster (keyed by loan, or by borrower) allocates (post.go,
// borrower.go), undoes returned money (returns.go), keeps suspense and what
// people do with it (suspense.go) and re-matches parked money (rematch.go);
// its state lives in a KV (kv.go), memory holding the hot path only
// (state.go).
// The loans table is loans.go; exact money in minor units, money.go.
// Package matcher/service drives both stages from Kafka inside
// transactions.
package matcher
