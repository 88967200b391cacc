// Package bench measures recon end to end: a seeded, realistic workload
// (loans with virtual IBANs and schedules; bank transactions to virtual
// IBANs, direct-debit collections and returns, other rules, suspense,
// duplicates across sources) driven through the matcher, the ClickHouse
// sink and the alerts component on a real broker and ClickHouse, against a
// baseline relay of the same shape, checked against what the generator
// expects. `recon bench` and `make bench` run it. RunState (`recon bench
// --state`, `make bench-state`) grows history instead and times the
// matcher's restarts and a rebalance, with every component's memory.
//
// Each component runs as a child process of the recon binary ("recon bench
// component NAME"), so its peak memory is its own. The run's ids (loans,
// IBANs, transactions) carry a fresh run id, and everything the bench reads
// back starts at the topics' end offsets taken at the start of the run, so
// runs share a broker with other users; the run writes ClickHouse into its
// own database recon_bench_<run>, whose sink starts at those offsets.
package bench
