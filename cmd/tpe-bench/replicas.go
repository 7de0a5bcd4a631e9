package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Replicas: chaos --replicas N runs N workers on one queue, each with its own clients,
// Reconciler and receiver, as N `run` processes on one Service Bus queue do. Per-principal
// serialization holds only within one of them.

// chaosClients builds one replica's clients, with short timeouts so stalls cost a retry
// rather than the message's whole budget.
func chaosClients(emu *emulators, dir *graphtest.Directory, f chaosFlags) (*clients, error) {
	return newClients(clientSettings{acsConnectionString: emu.acsConnectionString(), graphURL: emu.graphURL,
		tenantID: dir.TenantID(), idleConns: 2 * f.concurrency, acsTryTimeout: 300 * time.Millisecond,
		graphTimeout: time.Second, retryDelay: 20 * time.Millisecond, maxThrottleWait: 2 * time.Second})
}

// completedBy lists the messages each of n receivers completed.
func (s queueStats) completedBy(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = s.byOwner[i]
	}
	return out
}

// runReplicas runs one worker per replica on q, each through its own receiver and with its
// own clients and reconciler, as separate processes on one Service Bus queue, each stopped
// and started again as runWithRestarts says. It returns the restarts of all replicas.
func runReplicas(ctx context.Context, q *queue, f chaosFlags, expected int, reps []*clients) (int, error) {
	p := benchPolicy()
	type done struct {
		restarts int
		err      error
	}
	results := make(chan done, len(reps))
	for i, cl := range reps {
		rec := cl.reconciler(p)
		src := q.receiver(i)
		go func() {
			n, err := runWithRestarts(ctx, q, f, expected, func() (*worker.Worker, error) {
				return newChaosWorker(src, q, rec, cl, f)
			})
			results <- done{n, err}
		}()
	}
	restarts := 0
	var errs []error
	for range reps {
		r := <-results
		restarts += r.restarts
		errs = append(errs, r.err)
	}
	return restarts, errors.Join(errs...)
}

func newChaosWorker(src worker.Source, q *queue, rec *worker.Reconciler, cl *clients, f chaosFlags) (*worker.Worker, error) {
	return worker.New(src, rec, cl.dir, worker.Options{
		Concurrency: f.concurrency, DrainTimeout: 100 * time.Millisecond,
		MessageTimeout: f.messageTimeout,
		// As `run` on Service Bus: a group notification without members@delta hands a
		// large group back to the queue, one reconcile command per member.
		FanOut: func(_ context.Context, _ string, targets []worker.Target) error {
			for _, tg := range targets {
				q.send(worker.EncodeCommand(worker.CommandReconcile, tg.Principal, tg.Type), 0)
			}
			return nil
		},
		Trust:  worker.Trust{TenantID: graphtest.SampleTenantID, ClientState: benchClientState},
		Logger: slog.New(slog.DiscardHandler), ProbeBackoff: func(int) time.Duration { return 50 * time.Millisecond },
	})
}
