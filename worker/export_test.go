package worker

import "testing"

// The tests live in package worker_test so that they share internal/workertest's helpers
// (which import this package). This file exposes to them the few internals they check;
// keyed_test.go, a unit test of the unexported per-principal lanes, stays in package worker.

// MaxWriteRounds bounds the writes TestReconcileGivesUpOnADirectoryThatKeepsChanging may see.
const MaxWriteRounds = maxWriteRounds

// FanOutBatch is the largest batch the fan-out tests accept from the worker.
const FanOutBatch = fanOutBatch

// DefaultProbeBackoff is pinned by TestDefaultProbeBackoffDoublesToAMinute.
var DefaultProbeBackoff = defaultProbeBackoff

// CircuitState tells the circuit tests whether the circuit is open and on what fault: Ready
// deliberately hides the fault's text.
func (w *Worker) CircuitState() (open bool, cause string) { return w.circuit.state() }

// WaitQueued waits until key's lane holds calls queued calls, the last joined by joined
// other requests (waitQueued in keyed_test.go), so a test can tell duplicates coalesced.
func (w *Worker) WaitQueued(t *testing.T, key string, calls, joined int) {
	t.Helper()
	waitQueued(t, w.keyed, key, calls, joined)
}
