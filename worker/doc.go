// Package worker is the middle of the flow: it decodes queue messages into principals,
// reconciles each one (directory read, assignment read, pure decision, idempotent write),
// audits the outcome and settles the message. Backfill (package backfill) runs the same
// reconcile over a whole scope.
//
// What lives here, by file:
//
//   - decode: message*.go turn Graph notifications, CloudEvents and operator commands
//     into principals, groups and lifecycle events, rejecting what is not trusted.
//   - policy and decision: policy.go judges a user (Eligibility); decide.go is the pure
//     Decide from that verdict and the current assignment to a Plan.
//   - reconcile: reconcile.go reads, decides and writes one principal; result.go is its
//     audit record.
//   - the worker loop and settlement: worker.go receives, handle.go works one message
//     (lock renewal, retries, per-principal serialisation in keyed.go), settle.go
//     applies the settlement table, circuit.go pauses on systemic faults; observer.go
//     and metrics.go report.
//   - sources: source.go is the Source contract (what a source outside the package uses to
//     make and settle deliveries), filesource.go files and memory; the Service Bus queue
//     is worker/servicebus.
//
// Around it, each in its own package and using only this package's exported API:
// worker/servicebus (the transport), backfill (plan, apply, brake, progress, resync),
// subscriptions (the keeper and lifecycle), relay (webhook → queue), internal/limiter and
// internal/clock.
//
// Tests: worker/*_test.go are the external package worker_test. They share the fakes, the
// broker, the log sink, the observer and the notification builders of internal/workertest
// with the other packages' tests, and build every valid message with the encoders of
// message_encode.go; testdata/ holds real payload shapes and the fuzz corpus, which the
// decode tests feed as they are. export_test.go exposes the few internals the tests check,
// and keyed_test.go, a unit test of the unexported per-principal lanes, is the one test in
// package worker. Retries, backoffs, lock renewal and the drain wait on internal/clock's
// fake or instant clock, and the sleeping chaos tests keep their delays small, so
// `go test ./worker/` takes under a second.
//
// The package imports neither Microsoft Graph nor the ACS client. It declares the small
// interfaces it consumes (directory, Assignments, Source) with its own value types,
// and classifies the errors those collaborators return by behaviour (NotFound, Systemic,
// Temporary, RetryAfter methods), so its tests build in seconds and run against fakes or the
// in-memory emulators.
package worker
