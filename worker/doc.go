// Package worker is the middle of the flow: it decodes queue messages into principals,
// reconciles each one (directory read, assignment read, pure decision, idempotent write),
// audits the outcome and settles the message; backfill runs the same reconcile over a whole
// scope.
//
// The package imports neither Microsoft Graph nor the ACS client. It declares the small
// interfaces it consumes (directory, assignments, receiver) with its own value types, and
// classifies the errors those collaborators return by behaviour (NotFound, Systemic,
// Temporary, RetryAfter methods), so its tests build in seconds and run against fakes or the
// in-memory emulators.
package worker
