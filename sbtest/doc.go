// Package sbtest runs a local Service Bus endpoint so tests can drive the real
// azservicebus client (and the worker's receive loop on top of it) over real AMQP 1.0,
// without Azure and without Docker.
//
// The endpoint is a small Node.js program (node/server.js, on the rhea AMQP library) that
// serves the subset of Service Bus that azservicebus v1.11 uses for queues: SASL, $cbs
// put-token with Shared Access Signatures checked against the key, sender and receiver
// links, single and batched sends, peek-lock deliveries with lock tokens and system
// annotations, complete/abandon/dead-letter/release dispositions, lock renewal and
// settlement on $management, lock expiry, MaxDeliveryCount dead-lettering and the
// $DeadLetterQueue sub-queue. What it does not implement (sessions, deferral, scheduled
// messages, topics, duplicate detection) it refuses with an error whose description says
// "sbtest does not implement ..." (amqp:not-allowed on links and dispositions, status 501 on
// $management) instead of pretending.
//
// Tests call Start, which skips when node is not installed (and fails under CI=true);
// the emulate command calls Launch. Either installs the endpoint's npm dependencies with
// "npm ci" on first use when node/node_modules is missing.
package sbtest
