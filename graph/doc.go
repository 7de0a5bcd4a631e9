// Package graph reads the Microsoft Entra ID directory through Microsoft Graph
// (msgraph-sdk-go) for the reconcile: one user by id or UPN with the eligibility policy's
// properties selected, transitive scope membership, both of these in one JSON $batch
// (UserInGroups: one round trip, each inner request throttled and retried on its own), the paged candidate sets a backfill
// walks (scope members, Teams users, resource accounts, deleted users), and the change
// notification subscriptions that feed the queue.
//
// It is the only package that imports msgraph-sdk-go. Errors are *Error values classified
// by behaviour (NotFound, Systemic, Temporary, RetryAfter, Conflict), so the worker decides
// with errors.As and never by string: a Graph error (throttling, 5xx, timeout, auth) is never
// "not found", and neither is a successful answer that lacks a property we selected or
// its value array (Error.Incomplete, temporary): such an answer never reads as a disabled
// or unlicensed user. Every request goes through one authenticated pipeline with bounded
// retries that honour Retry-After to the millisecond (retry.go: Graph sends fractional
// values, which kiota-http-go's own retry handler truncates), and is counted
// (Client.Calls). A UPN that starts with $ is read as /users('$x@y'); transitive member
// listings are advanced queries (ConsistencyLevel: eventual, $count=true) served from an
// eventually consistent index. The worker's read of a user and its scope membership is one
// JSON $batch (userscope.go, batch.go: the user and its transitiveMemberOf, in standard
// query mode), posted through the same token provider, retry handler and call counter. The
// SDK builds and sends every other request; the answers of the hot reads (a user,
// checkMemberGroups, a batch, listing pages) are decoded with encoding/json into small
// structs (wire.go), and listings read one page ahead of their consumer.
//
// Tests run the real client against graph/graphtest, the in-process Graph emulator.
package graph
