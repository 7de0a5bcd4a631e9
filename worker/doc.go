// Package worker is the middle of the flow: it decodes queue messages into principals,
// reconciles each one (directory read, assignment read, pure decision, idempotent write),
// audits the outcome and settles the message; backfill runs the same reconcile over a whole
// scope.
//
// What lives here, by file:
//
//   - decode: message*.go turn Graph notifications, CloudEvents and operator commands
//     into principals, groups and lifecycle events, rejecting what is not trusted.
//   - policy and decision: policy.go judges a user (Eligibility); decide.go is the pure
//     Decide from that verdict and the current assignment to a Plan.
//   - reconcile: reconcile.go reads, decides and writes one principal; result.go is its
//     audit record.
//   - the worker loop and settlement: worker.go receives, pool.go works one message
//     (lock renewal, retries, per-principal serialisation in keyed.go), settle.go
//     applies the settlement table, circuit.go pauses on systemic faults; observer.go
//     and metrics.go report.
//   - sources: source.go is the Source contract, servicebus.go the Service Bus queue,
//     filesource.go files and memory.
//   - backfill: backfill*.go plan every candidate, then apply or enqueue the changes under
//     the revoke brake; plan_output.go and progress.go report it.
//   - resync: resync.go runs a backfill inside the worker, on a schedule or on demand.
//   - subscription keeper: subscriptions.go, eventgrid.go, keeper*.go and lifecycle.go
//     keep the Graph change-notification subscriptions alive and answer lifecycle events.
//   - relay: relay.go puts Graph webhook posts on the queue where Event Grid is not used.
//   - limiter: limiter.go adapts how many Graph and ACS calls are in flight to throttling.
//
// The package imports neither Microsoft Graph nor the ACS client. It declares the small
// interfaces it consumes (directory, assignments, receiver) with its own value types, and
// classifies the errors those collaborators return by behaviour (NotFound, Systemic,
// Temporary, RetryAfter methods), so its tests build in seconds and run against fakes or the
// in-memory emulators.
package worker
