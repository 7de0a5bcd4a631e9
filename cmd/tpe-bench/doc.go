// Command tpe-bench measures the worker pipeline end to end and tries to break it.
//
// It runs the real worker, acs and graph code against the in-process emulators
// (acs/acstest, graph/graphtest) over loopback HTTP with added latency, and prints one JSON
// line per run:
//
//	tpe-bench throughput --messages N --latency D --concurrency C
//	tpe-bench backfill   --users N --latency D --concurrency C [--fault-rate F]
//	tpe-bench chaos      --messages N --fault-rate F --seed S
//
// throughput runs the queue path (worker.New over a lazily generated source) and compares
// the rate with the bound the latency allows; backfill runs worker.Backfill behind an
// AdaptiveLimiter and checks every principal afterwards; chaos injects faults, directory
// changes, duplicates, reordering and worker restarts, then checks convergence. See
// docs/benchmarks.md for how to read the numbers.
package main
