package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// chaosResult is the chaos line. Convergence is checked after the queue drained and one
// resync (backfill.Run) ran: the design makes the scheduled resync part of correctness,
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
	WrongBeforeResync int `json:"wrong_before_resync"`
	ResyncWrites      int `json:"resync_writes"`
	ResyncRuns        int `json:"resync_runs"`
	// Replicas is how many workers shared the queue, each with its own clients.
	Replicas int `json:"replicas"`
	// ReplicaCompleted is how many messages each replica completed.
	ReplicaCompleted []int `json:"replica_completed"`
	// StaleWrites are ACS writes that landed contrary to the directory at that moment
	// (stale.go); StaleWritesRepaired of them a later write, before the queue drained, put
	// right.
	StaleWrites         int `json:"stale_writes"`
	StaleWritesRepaired int `json:"stale_writes_repaired"`
	// Per1000 are the wrong principals per 1,000 directory changes (mutations), before and
	// after the resync.
	WrongBeforeResyncPer1000 float64 `json:"wrong_before_resync_per_1000_changes"`
	WrongPer1000             float64 `json:"wrong_per_1000_changes"`
	Seconds                  float64 `json:"seconds"`
	Resync                   string  `json:"resync"`
	Traffic                  string  `json:"traffic"`
}

type chaosFlags struct {
	messages, users, concurrency, restarts int
	faultRate                              float64
	seed                                   int64
	messageTimeout                         time.Duration
	maxDelivery                            int
	replicas, copies                       int
	graphLatency, acsLatency, jitter       time.Duration
	maxDelay, pairs                        time.Duration
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
	fs.IntVar(&f.replicas, "replicas", 1, "workers on the one queue, each with its own clients and reconciler (as separate processes)")
	fs.DurationVar(&f.graphLatency, "graph-latency", time.Millisecond, "time every Graph call takes")
	fs.DurationVar(&f.acsLatency, "acs-latency", time.Millisecond, "time every ACS call takes")
	fs.DurationVar(&f.jitter, "jitter", 0, "random extra per call to either emulator, mean (exponential, cut at 10x)")
	fs.IntVar(&f.copies, "copies", 0, "copies of each notification (0: one to three at random)")
	fs.DurationVar(&f.maxDelay, "max-delay", 300*time.Millisecond, "bound of each notification copy's random delay")
	fs.DurationVar(&f.pairs, "pairs", 0, "if set: every principal starts converged and each user is changed twice, 0..D apart, then left alone")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.messages <= 0 || f.users <= 0 || f.concurrency <= 0 || f.messageTimeout <= 0 || f.maxDelivery <= 0 || f.faultRate < 0 || f.faultRate > 1 {
		return fmt.Errorf("--messages, --users and --concurrency must be positive and --fault-rate within 0..1")
	}
	if f.replicas <= 0 || f.copies < 0 || f.graphLatency < 0 || f.acsLatency < 0 || f.jitter < 0 || f.maxDelay < 0 || f.pairs < 0 {
		return fmt.Errorf("--replicas must be positive; --copies, the latencies, --jitter, --max-delay and --pairs must not be negative")
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
	users := f.users
	if f.pairs > 0 {
		n := pairUsers(f.messages, f.copies)
		users = n + n/10 + 1 // the generated mix holds a few deleted users; n live ones are changed
	}
	dir := graphtest.Generate(users, f.seed, graphtest.DefaultMix)
	watch := newStaleWatch(dir, p)
	emu, err := startEmulators(dir, emulatorSettings{acsLatency: f.acsLatency, graphLatency: f.graphLatency,
		throttleRetryAfter: 100 * time.Millisecond, keepACSLog: true, jitter: f.jitter, jitterSeed: f.seed,
		wrapACS: watch.wrap})
	if err != nil {
		return chaosResult{}, err
	}
	defer emu.close()
	watch.srv = emu.acs
	var foreign map[string]bool
	if f.pairs > 0 {
		foreign = seedConverged(emu.acs, dir, p, f.seed)
	} else {
		foreign = seedRandom(emu.acs, dir, p, f.seed, 0.3)
	}
	reps := make([]*clients, f.replicas)
	for i := range reps {
		if reps[i], err = chaosClients(emu, dir, f); err != nil {
			return chaosResult{}, err
		}
	}
	emu.setFaults(f.faultRate, f.seed, chaosKinds...)

	q := newQueue(0, nil, f.maxDelivery)
	expected, mutations := startTraffic(ctx, dir, q, f)
	restarts, err := runReplicas(ctx, q, f, expected, reps)
	nMut := <-mutations
	if err != nil {
		return chaosResult{}, err
	}
	qs := q.stats()
	_, before := check(emu.acs, dir, p, foreign)
	stale, repaired := watch.counts()
	faults := emu.graphFaults.injected.Load() + int64(countFaults(emu.acs))
	emu.setFaults(0, f.seed) // the storm is over; the scheduled resync runs
	runs, writes, err := resync(ctx, reps[0].reconciler(p), reps[0])
	if err != nil {
		return chaosResult{}, err
	}
	principals, wrong := check(emu.acs, dir, p, foreign)
	describeWrong(stderr, emu.acs, dir, p, wrong)
	traffic := "initial notification per principal, then random changes until --messages are sent"
	if f.pairs > 0 {
		traffic = "converged start; each changed user changed twice, 0.." + f.pairs.String() + " apart"
	}
	return chaosResult{
		Principals: principals, Converged: len(wrong) == 0, Wrong: len(wrong),
		Lost: qs.produced - qs.completed - qs.deadLettered(), DeadLettered: qs.deadLettered(), DeadReasons: qs.dead,
		Messages: qs.produced, Completed: qs.completed, Restarts: restarts, Mutations: nMut, Faults: faults,
		WrongBeforeResync: len(before), ResyncWrites: writes, ResyncRuns: runs,
		Replicas: f.replicas, ReplicaCompleted: qs.completedBy(f.replicas), StaleWrites: stale, StaleWritesRepaired: repaired,
		WrongBeforeResyncPer1000: per1000(len(before), nMut), WrongPer1000: per1000(len(wrong), nMut),
		Seconds: round3(time.Since(start).Seconds()),
		Resync:  "one backfill.Run after the queue drained and the faults stopped",
		Traffic: traffic,
	}, nil
}

// startTraffic changes the directory and sends the notifications in the background, and
// seals the queue when done. It returns the number of messages the run sends at least (the
// restarts are spread over them) and a channel that gets the number of changes made.
func startTraffic(ctx context.Context, dir *graphtest.Directory, q *queue, f chaosFlags) (int, <-chan int) {
	m := &mutator{dir: dir, q: q, rng: rand.New(rand.NewPCG(uint64(f.seed), 0x6d7574)), maxDelay: f.maxDelay,
		copies: f.copies, alwaysDelta: f.pairs > 0}
	mutations := make(chan int, 1)
	if f.pairs > 0 {
		n := pairUsers(f.messages, f.copies)
		go func() {
			changes := m.pairs(ctx, n, f.pairs)
			q.seal()
			mutations <- changes
		}()
		return 2 * n, mutations
	}
	m.initial(f.messages)
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
	return f.messages, mutations
}

func per1000(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return round3(float64(n) * 1000 / float64(of))
}

// runWithRestarts runs a worker over q, stops it (cancel → drain → abandon) each time
// another share of the messages has settled, starts a new one on the same queue, and lets
// the last one run until the queue is sealed and empty. It returns the restarts made.
func runWithRestarts(ctx context.Context, q *queue, f chaosFlags, expected int, newWorker func() (*worker.Worker, error)) (int, error) {
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
			target := (restarts + 1) * expected / (f.restarts + 1)
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

// resync runs backfill.Run as the scheduled resync does, again while principals fail
// (at most three runs), and returns the runs and the writes they made.
func resync(ctx context.Context, rec *worker.Reconciler, cl *clients) (runs, writes int, err error) {
	for runs < 3 {
		runs++
		sum, err := backfill.Run(ctx, backfill.Options{Reconciler: rec, Enumerator: cl.dir,
			MaxRevokes: -1, DeletedSince: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
			Logger: slog.New(slog.DiscardHandler), Backoff: 20 * time.Millisecond})
		writes += int(sum.ACSWrites)
		switch {
		case err == nil:
			return runs, writes, nil
		case !errors.Is(err, backfill.ErrPrincipalsFailed):
			return runs, writes, fmt.Errorf("resync: %w", err)
		}
	}
	return runs, writes, nil
}
