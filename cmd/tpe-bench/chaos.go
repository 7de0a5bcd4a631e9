package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// chaosResult is the chaos line. Convergence is checked after the queue drained and one
// resync (worker.Backfill) ran: the design makes the scheduled resync part of correctness,
// since messages may be dead-lettered (MaxDeliveryCountExceeded) under heavy faults.
type chaosResult struct {
	Principals   int            `json:"principals"`
	Converged    bool           `json:"converged"`
	Wrong        int            `json:"wrong"`
	Lost         int            `json:"lost_messages"`
	DeadLettered int            `json:"dead_lettered"`
	DeadReasons  map[string]int `json:"dead_letter_reasons"`
	Messages     int            `json:"messages"`
	Completed    int            `json:"completed"`
	Restarts     int            `json:"restarts"`
	Mutations    int            `json:"mutations"`
	Faults       int64          `json:"faults_injected"`
	// WrongBeforeResync is how many principals the queue alone left wrong; the resync's
	// writes fixed them.
	WrongBeforeResync int     `json:"wrong_before_resync"`
	ResyncWrites      int     `json:"resync_writes"`
	ResyncRuns        int     `json:"resync_runs"`
	Seconds           float64 `json:"seconds"`
	Resync            string  `json:"resync"`
}

type chaosFlags struct {
	messages, users, concurrency, restarts int
	faultRate                              float64
	seed                                   int64
	messageTimeout                         time.Duration
	maxDelivery                            int
}

func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f chaosFlags
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.messages, "messages", 2000, "messages to send (one per principal first, then the changes')")
	fs.IntVar(&f.users, "users", 200, "generated directory size")
	fs.IntVar(&f.concurrency, "concurrency", 32, "worker concurrency")
	fs.IntVar(&f.restarts, "restarts", 2, "times the worker is stopped and started again mid-run")
	fs.Float64Var(&f.faultRate, "fault-rate", 0.2, "share of requests to both emulators that fail")
	fs.Int64Var(&f.seed, "seed", 1, "seed of everything random")
	fs.DurationVar(&f.messageTimeout, "message-timeout", 5*time.Second, "the worker's bound on one message")
	fs.IntVar(&f.maxDelivery, "max-delivery", 10, "deliveries before the queue dead-letters a message (Service Bus: 10)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.messages <= 0 || f.users <= 0 || f.concurrency <= 0 || f.messageTimeout <= 0 || f.maxDelivery <= 0 || f.faultRate < 0 || f.faultRate > 1 {
		return fmt.Errorf("--messages, --users and --concurrency must be positive and --fault-rate within 0..1")
	}
	res, err := chaos(ctx, f, stderr)
	if err != nil {
		return err
	}
	if err := printJSON(stdout, res); err != nil {
		return err
	}
	if res.Wrong != 0 || res.Lost != 0 {
		return fmt.Errorf("%w: %d principals wrong, %d messages lost", errNotConverged, res.Wrong, res.Lost)
	}
	return nil
}

// chaosKinds are every fault the emulators can inject.
var chaosKinds = []acstest.FaultKind{acstest.FaultThrottle, acstest.FaultInternal, acstest.FaultUnavailable,
	acstest.FaultReset, acstest.FaultStall}

func chaos(ctx context.Context, f chaosFlags, stderr io.Writer) (chaosResult, error) {
	start := time.Now()
	p := benchPolicy()
	dir := graphtest.Generate(f.users, f.seed, graphtest.DefaultMix)
	emu, err := startEmulators(dir, emulatorSettings{acsLatency: time.Millisecond, graphLatency: time.Millisecond,
		throttleRetryAfter: 100 * time.Millisecond, keepACSLog: true})
	if err != nil {
		return chaosResult{}, err
	}
	defer emu.close()
	foreign := seedRandom(emu.acs, dir, p, f.seed, 0.3)
	// Short timeouts, so stalls cost a retry rather than the message's whole budget.
	cl, err := newClients(clientSettings{acsConnectionString: emu.acs.ConnectionString(), graphURL: emu.graphURL,
		tenantID: dir.TenantID(), idleConns: 2 * f.concurrency, acsTryTimeout: 300 * time.Millisecond,
		graphTimeout: time.Second, retryDelay: 20 * time.Millisecond, maxThrottleWait: 2 * time.Second})
	if err != nil {
		return chaosResult{}, err
	}
	rec := cl.reconciler(p)
	emu.setFaults(f.faultRate, f.seed, chaosKinds...)

	q := newQueue(0, nil, f.maxDelivery)
	m := &mutator{dir: dir, q: q, rng: rand.New(rand.NewPCG(uint64(f.seed), 0x6d7574)), maxDelay: 300 * time.Millisecond}
	m.initial(f.messages)
	mutations := make(chan int, 1)
	go func() {
		n := 0
		for m.sent < f.messages && ctx.Err() == nil {
			m.mutate()
			n++
			time.Sleep(time.Duration(2+m.rng.IntN(4)) * time.Millisecond)
		}
		q.seal()
		mutations <- n
	}()
	restarts, err := runWithRestarts(ctx, q, f, func() (*worker.Worker, error) {
		return worker.New(q, rec, cl.dir, worker.Options{
			Concurrency: f.concurrency, DrainTimeout: 100 * time.Millisecond,
			MessageTimeout: f.messageTimeout,
			// As `run` on Service Bus: a group notification without members@delta hands a
			// large group back to the queue, one reconcile command per member.
			FanOut: func(_ context.Context, _ string, targets []worker.Target) error {
				for _, tg := range targets {
					body, err := json.Marshal(map[string]string{"command": string(worker.CommandReconcile), "principal": tg.Principal})
					if err != nil {
						return err
					}
					q.send(body, 0)
				}
				return nil
			},
			Trust:  worker.Trust{TenantID: dir.TenantID(), ClientState: benchClientState},
			Logger: slog.New(slog.DiscardHandler), ProbeBackoff: func(int) time.Duration { return 50 * time.Millisecond },
		})
	})
	nMut := <-mutations
	if err != nil {
		return chaosResult{}, err
	}
	qs := q.stats()
	_, before := check(emu.acs, dir, p, foreign)
	faults := emu.graphFaults.injected.Load() + int64(countFaults(emu.acs))
	emu.setFaults(0, f.seed) // the storm is over; the scheduled resync runs
	runs, writes, err := resync(ctx, rec, cl)
	if err != nil {
		return chaosResult{}, err
	}
	principals, wrong := check(emu.acs, dir, p, foreign)
	describeWrong(stderr, emu.acs, dir, p, wrong)
	return chaosResult{
		Principals: principals, Converged: len(wrong) == 0, Wrong: len(wrong),
		Lost: qs.produced - qs.completed - qs.deadLettered(), DeadLettered: qs.deadLettered(), DeadReasons: qs.dead,
		Messages: qs.produced, Completed: qs.completed, Restarts: restarts, Mutations: nMut, Faults: faults,
		WrongBeforeResync: len(before), ResyncWrites: writes, ResyncRuns: runs,
		Seconds: round3(time.Since(start).Seconds()),
		Resync:  "one worker.Backfill after the queue drained and the faults stopped",
	}, nil
}

// runWithRestarts runs a worker over q, stops it (cancel → drain → abandon) each time
// another share of the messages has settled, starts a new one on the same queue, and lets
// the last one run until the queue is sealed and empty. It returns the restarts made.
func runWithRestarts(ctx context.Context, q *queue, f chaosFlags, newWorker func() (*worker.Worker, error)) (int, error) {
	restarts := 0
	for {
		w, err := newWorker()
		if err != nil {
			return restarts, err
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(wctx) }()
		if restarts < f.restarts {
			target := (restarts + 1) * f.messages / (f.restarts + 1)
			for settled(q) < target && ctx.Err() == nil {
				select {
				case err := <-done:
					stop()
					return restarts, err
				case <-time.After(20 * time.Millisecond):
				}
			}
			stop()
			if err := <-done; err != nil {
				return restarts, err
			}
			restarts++
			continue
		}
		err = <-done
		stop()
		if ctx.Err() != nil {
			return restarts, errors.New("interrupted")
		}
		return restarts, err
	}
}

func settled(q *queue) int {
	s := q.stats()
	return s.completed + s.deadLettered()
}

// countFaults counts the ACS emulator's answers that were faults: 429 and 5xx statuses,
// resets and stalls (status 0).
func countFaults(s *acstest.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Status == 0 || r.Status == 429 || r.Status >= 500 {
			n++
		}
	}
	return n
}

// resync runs worker.Backfill as the scheduled resync does, again while principals fail
// (at most three runs), and returns the runs and the writes they made.
func resync(ctx context.Context, rec *worker.Reconciler, cl *clients) (runs, writes int, err error) {
	for runs < 3 {
		runs++
		sum, err := worker.Backfill(ctx, worker.BackfillOptions{Reconciler: rec, Enumerator: cl.dir,
			MaxRevokes: -1, DeletedSince: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
			Logger: slog.New(slog.DiscardHandler), Backoff: 20 * time.Millisecond})
		writes += int(sum.ACSWrites)
		switch {
		case err == nil:
			return runs, writes, nil
		case !errors.Is(err, worker.ErrPrincipalsFailed):
			return runs, writes, fmt.Errorf("resync: %w", err)
		}
	}
	return runs, writes, nil
}
