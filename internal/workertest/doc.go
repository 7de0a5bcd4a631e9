// Package workertest holds the test helpers of the worker and of the packages around it,
// so that none is written twice. It is imported by tests only:
//
//   - fakes.go: in-memory doubles of the directory (Directory) and ACS (Assignments),
//     scriptable to fail, and the errors they fail with (ErrNotFound, ErrThrottled, ...).
//   - broker.go: Broker, an in-memory peek-lock queue whose Source links are a
//     worker.Source (lock expiry and renewal, redelivery, dead-letter at MaxDelivery).
//   - env.go: the fixtures' tenant, clientState, policy and users; the notification
//     builders (Note, Forged, UserNote, all written by worker.EncodeNotifications); Env,
//     a worker's collaborators in memory; the log sink, the recording observer, and
//     RunToEnd and RunInBackground.
//   - check.go: assertions more than one test needs (CheckStored, RepeatedKeys, Metric).
//
// The worker package's own tests are the external package worker_test, so they import this
// one like everybody else; the few internals they check are exposed by worker/export_test.go.
// Package clock's Fake is the fake clock.
package workertest
