// Package sbtest runs a local Service Bus endpoint so tests can drive the real
// azservicebus client (and the worker's receive loop on top of it) over real AMQP 1.0,
// without Azure and without Docker.
//
// The endpoint is a small Node.js program (node/server.js, on the rhea AMQP library) that
// serves the subset of Service Bus that azservicebus v1.11 and @azure/service-bus 7.9 use
// for queues: SASL, $cbs put-token with Shared Access Signatures checked against the key,
// sender and receiver links, single and batched sends, peek-lock and receive-and-delete
// deliveries with lock tokens and system annotations, complete/abandon/dead-letter/release
// dispositions, lock renewal, settlement, peek, schedule-message and
// cancel-scheduled-message on $management, lock expiry, MaxDeliveryCount dead-lettering, the
// $DeadLetterQueue sub-queue, scheduled messages and duplicate detection. What it does not
// implement (sessions, deferral, topics, transactions) it refuses with an error whose
// description says "sbtest does not implement ..." (amqp:not-allowed on links and
// dispositions, status 501 on $management) instead of pretending.
//
// Tests call Start, which skips when node is not installed (and fails under CI=true);
// the emulate command calls Launch. Either installs the endpoint's npm dependencies with
// "npm ci" when node/node_modules does not hold the versions package.json pins.
//
// # Sources
//
// The behaviour follows Microsoft's documentation where it says something:
//
//   - Duplicate detection (learn.microsoft.com/azure/service-bus-messaging/duplicate-detection):
//     with requiresDuplicateDetection (Options.DuplicateDetection) a message whose
//     MessageId was sent within the history window is reported as accepted and dropped;
//     nothing but the MessageId counts; scheduled messages take part (a plain send after a
//     scheduled one with the same id is dropped, and the other way round); the window
//     defaults to 10 minutes. Every message of a batch is checked on its own, repeats
//     inside one batch included.
//   - Message sequencing and timestamps, "Scheduled messages"
//     (learn.microsoft.com/azure/service-bus-messaging/message-sequencing): a message with
//     x-opt-scheduled-enqueue-time (ScheduledEnqueueTime) or sent through schedule-message
//     does not materialize until its time; schedule-message returns its sequence number,
//     which cancel-scheduled-message takes; cancellation deletes it; peek shows it; when
//     it becomes active it is appended as if enqueued at that instant, with a new
//     sequence number and enqueued time.
//   - AMQP 1.0 in Service Bus: request/response-based operations
//     (learn.microsoft.com/azure/service-bus-messaging/service-bus-amqp-request-response):
//     $management answers carry statusCode and statusDescription; peek answers 204 when
//     there are no more messages; the operation names and maps of renew-lock,
//     update-disposition, peek-message, schedule-message and cancel-scheduled-message, as
//     azservicebus v1.11 (internal/mgmt.go) sends them.
//   - AMQP 1.0 protocol guide, claims-based authorization
//     (learn.microsoft.com/azure/service-bus-messaging/service-bus-amqp-protocol-guide):
//     put-token on $cbs, answered with status-code and status-description.
//
// # The endpoint's own choices
//
// No public source settles these; each is what the endpoint does, not a fact about the
// service:
//
//   - A message without a message-id is never a duplicate. Message ids are compared by
//     their string form (a uuid in canonical form, binary as hex, numbers in decimal).
//   - A dropped duplicate still consumes a sequence number, and schedule-message returns
//     one for it (as reported in github.com/Azure/azure-service-bus/issues/265); cancelling
//     that number does nothing.
//   - The duplicate-detection window runs from the first accepted send of an id; a
//     dropped repeat does not extend it. Windows below Service Bus's 20 s minimum are
//     accepted so tests can see one end.
//   - cancel-scheduled-message with a number that names no scheduled message (unknown,
//     already enqueued or already cancelled) succeeds and changes nothing. A cancelled
//     message's id stays logged for duplicate detection until its window ends.
//   - An x-opt-scheduled-enqueue-time at or before now enqueues at once. A scheduled
//     message's time to live counts from when it is enqueued. A peek shows a scheduled
//     message with x-opt-message-state 2 and, as its enqueued time, when it was scheduled.
//   - A request's reply-to is matched against the reply link's target address first and
//     then against its name: @azure/core-amqp attaches its $cbs reply receiver with a name
//     and no target address and sets reply-to to the name.
//   - Error answers on $management carry the condition as errorCondition, the key the
//     official clients read; the request/response page does not name one.
//   - The dead-letter queue has no dead-letter queue: at MaxDeliveryCount a message stays.
//
// # A second client
//
// TestOfficialJavaScriptClient runs node/test/conformance.test.js with @azure/service-bus
// (pinned in node/package.json), a client the endpoint was not written with, so what the
// endpoint does is checked by two official clients rather than fitted to one. A client's
// own habits stay in the tests, never in the endpoint: the JavaScript client, for one,
// retries UnauthorizedAccess and reports the attempts as one AggregateError.
//
// Every disposition is written with its own outcome: rhea 3.0.5 folds consecutive
// dispositions into one frame carrying the first one's state, so node/lib/dispositions.js
// replaces its writer (pinned to that version).
package sbtest
