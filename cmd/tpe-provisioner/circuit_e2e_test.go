package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// A permission missing for one operation only — ACS refusing PUT, Graph refusing the
// scope check (transitiveMemberOf, inside the worker's $batch) — is invisible to a probe that only
// reads, and used to cycle every message through the broker until it was dead-lettered
// MaxDeliveryCountExceeded. While such a fault lasts (here ~150 probe cycles) nothing is
// dead-lettered and no message is abandoned more than once; once it is fixed, every
// message completes.
func TestE2EOneOperationRefusedKeepsTheCircuitOpenWithoutDeadLetters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault func(e *e2eEnv)
		seen  func(e *e2eEnv) int // refused calls so far
	}{
		{name: "ACS 403 on PUT only",
			fault: func(e *e2eEnv) { e.acs.FailOn("PUT", 403, 0) },
			seen: func(e *e2eEnv) int {
				n := 0
				for _, r := range e.acs.Requests() {
					if r.Status == 403 {
						n++
					}
				}
				return n
			}},
		{name: "Graph 403 on the scope check only",
			fault: func(e *e2eEnv) { e.graph.FailOn(graphtest.OpTransitiveMemberOf, 403, 0) },
			seen: func(e *e2eEnv) int {
				n := 0
				for _, r := range e.graph.Requests() {
					if r.Status == 403 {
						n++
					}
				}
				return n
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, sampleDirectory(t))
			svc := e.service(t)
			tc.fault(e)
			users := []string{e2eAdele, e2eAlex, e2eDiego, e2eLeeGu}
			var bodies [][]byte
			for _, id := range users {
				bodies = append(bodies, userNote(id))
			}
			src := worker.NewMemorySource(bodies, worker.FileOptions{Backoff: func(int) time.Duration { return -1 }})
			rec := &settlements{}
			w := e.newWorker(t, svc, src, worker.Options{Concurrency: 2, Observer: rec,
				ProbeBackoff: func(int) time.Duration { return 10 * time.Millisecond }})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- runWorker(ctx, w) }()

			waitFor(t, "the circuit to open", func() bool {
				err := w.Ready()
				return err != nil && strings.Contains(err.Error(), "circuit open")
			})
			before := tc.seen(e)
			waitFor(t, "150 probe cycles to meet the fault", func() bool {
				return tc.seen(e) >= before+150 || len(src.DeadLetters()) > 0
			})
			if n := len(src.DeadLetters()); n != 0 || src.Completed() != 0 {
				t.Fatalf("while the fault lasts: %d dead letters, %d completed; want 0 and 0\n%s", n, src.Completed(), e.logs)
			}
			if w.Ready() == nil {
				t.Fatal("the circuit closed while the fault lasted")
			}

			e.acs.ClearFaults()
			e.graph.ClearFaults()
			if err := <-done; err != nil {
				t.Fatalf("Run = %v\nlogs:\n%s", err, e.logs)
			}
			if n := len(src.DeadLetters()); n != 0 {
				t.Errorf("dead letters = %d, want 0: %+v", n, src.DeadLetters())
			}
			if got := src.Completed(); got != len(bodies) {
				t.Errorf("completed = %d, want %d once the permission was granted", got, len(bodies))
			}
			rec.mu.Lock()
			for id, outcomes := range rec.got {
				abandoned := 0
				for _, o := range outcomes {
					if o == worker.OutcomeAbandoned {
						abandoned++
					}
				}
				if abandoned > 1 {
					t.Errorf("message %s abandoned %d times (%v): its delivery count rose by more than one", id, abandoned, outcomes)
				}
			}
			rec.mu.Unlock()
			for _, id := range users {
				if _, ok := e.assignment(id); !ok {
					t.Errorf("%s not granted after the fault cleared", id)
				}
			}
		})
	}
}
