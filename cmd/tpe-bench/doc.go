// Command tpe-bench measures the worker pipeline end to end and tries to break it.
//
// It runs the real worker, acs and graph code against the in-process emulators
// (acs/acstest, graph/graphtest) over loopback HTTP with added latency, and prints one JSON
// line per run:
//
//	tpe-bench throughput --messages N --latency D --concurrency C [--compare BIN]
//	tpe-bench latency    --messages N --graph-latency D --acs-latency D --concurrency C [--compare BIN]
//	tpe-bench backfill   --users N --latency D --concurrency C [--fault-rate F]
//	tpe-bench chaos      --messages N --fault-rate F --seed S [--replicas N] [--pairs D]
//	                     [--copies K] [--max-delay D] [--graph-latency D] [--acs-latency D] [--jitter D]
//
// throughput runs the queue path (worker.New over a lazily generated source) and compares
// the rate with the bound the latency allows; latency runs the same queue path and times
// every message from receive to settle, by outcome, next to the longest chain of calls it
// waited for one after another (trace.go), with Graph resource units at the published
// costs (graphcost.go); --compare BIN runs another build with the same flags first (an
// earlier commit's, for a before/after on one machine). backfill runs backfill.Run
// behind a limiter.Adaptive and checks every principal afterwards; chaos injects faults, directory
// changes, duplicates, reordering and worker restarts, then checks convergence. With
// --replicas N, N workers share the queue, each with its own clients and Reconciler, as N
// `run` processes on one Service Bus queue do; --pairs D starts every principal converged and
// changes each user twice, 0..D apart, then leaves it alone, so a stale write that the
// user's own notifications do not repair stays wrong until the resync (wrong_before_resync).
// The ACS emulator is watched for writes that land contrary to the directory (stale_writes).
// See docs/benchmarks.md for how to read the numbers.
package main
