// Package backfill reconciles a whole scope: Run plans every candidate from the directory's
// listings (backfill_plan.go), holds the plan to the revoke brake and the listing rules
// (backfill.go, backfill_guard.go), then applies each change with a full Reconcile or hands
// it to the queue (backfill_apply.go), both on a bounded pool of goroutines (pool.go);
// plan_output.go, progress.go and summary.go (the Summary a run returns) report it, and
// resync.go runs it inside the worker on a schedule or on demand. It uses only the worker's
// exported API: the Reconciler (WithAssignments, Policy, PlanKnown, Reconcile), Result, Target.
package backfill
