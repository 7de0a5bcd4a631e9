package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/limiter"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// backfillResult is the backfill line. The bound is concurrency / (calls per user ×
// latency), with the calls (listing pages, ACS reads and writes, retries included) counted
// during the run.
type backfillResult struct {
	Users        int     `json:"users"`
	Seconds      float64 `json:"seconds"`
	UsersPerSec  float64 `json:"users_per_sec"`
	Bound        float64 `json:"bound_users_per_sec"`
	Ratio        float64 `json:"ratio"`
	GraphCalls   int64   `json:"graph_calls"`
	ACSReads     int64   `json:"acs_reads"`
	ACSWrites    int64   `json:"acs_writes"`
	Correct      bool    `json:"correct"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	LimiterMin   int     `json:"limiter_min"`
	LimiterMax   int     `json:"limiter_max"`
	LimiterFinal int     `json:"limiter_final"`
	Throttles    int     `json:"throttles"`
	// LimiterTrace is the limiter's concurrency once a second.
	LimiterTrace []int   `json:"limiter_trace,omitempty"`
	Candidates   int     `json:"candidates"`
	Grants       int     `json:"grants"`
	Revokes      int     `json:"revokes"`
	Wrong        int     `json:"wrong"`
	Failed       int     `json:"failed_principals"`
	CPUPerUser   float64 `json:"cpu_us_per_user"`
	Faults       string  `json:"faults,omitempty"`
	Emulators    string  `json:"emulators"`
}

type backfillFlags struct {
	users, concurrency        int
	latency                   time.Duration
	faultRate                 float64
	faultStart, faultDuration time.Duration
	seed                      int64
	cpuprofile                string
	noLimiter                 bool
}

func runBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f backfillFlags
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.users, "users", 100000, "generated directory size")
	fs.IntVar(&f.concurrency, "concurrency", 32, "backfill concurrency and the limiter's ceiling")
	fs.DurationVar(&f.latency, "latency", 20*time.Millisecond, "latency added to every emulator answer")
	fs.Float64Var(&f.faultRate, "fault-rate", 0, "share of requests answered 429 with Retry-After during the fault window")
	fs.DurationVar(&f.faultStart, "fault-start", 3*time.Second, "when the fault window opens")
	fs.DurationVar(&f.faultDuration, "fault-duration", 10*time.Second, "how long the fault window stays open")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the directory, the ACS seeding and the faults")
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to `FILE`")
	fs.BoolVar(&f.noLimiter, "no-limiter", false, "leave the adaptive limiter out of the transports (to measure what it costs)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.users <= 0 || f.concurrency <= 0 || f.faultRate < 0 || f.faultRate > 1 {
		return fmt.Errorf("--users and --concurrency must be positive and --fault-rate within 0..1")
	}
	res, err := benchBackfill(ctx, f)
	if err != nil {
		return err
	}
	if err := printJSON(stdout, res); err != nil {
		return err
	}
	if !res.Correct {
		return fmt.Errorf("%w: %d principals wrong, %d failed", errNotConverged, res.Wrong, res.Failed)
	}
	return nil
}

func benchBackfill(ctx context.Context, f backfillFlags) (backfillResult, error) {
	p := benchPolicy()
	dir := graphtest.Generate(f.users, f.seed, graphtest.DefaultMix)
	emu, err := startEmulators(dir, emulatorSettings{acsLatency: f.latency, graphLatency: f.latency})
	if err != nil {
		return backfillResult{}, err
	}
	defer emu.close()
	seeded := seedBackfill(emu.acs, dir, p, f.seed, 0.10, 0.02)
	lim := limiter.New(1, f.concurrency)
	wrap := lim.Transport
	if f.noLimiter {
		wrap = nil
	}
	cl, err := newClients(clientSettings{acsConnectionString: emu.acsConnectionString(), graphURL: emu.graphURL,
		tenantID: dir.TenantID(), idleConns: 2 * f.concurrency, wrap: wrap})
	if err != nil {
		return backfillResult{}, err
	}
	stopProfile, err := startProfile(f.cpuprofile)
	if err != nil {
		return backfillResult{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	trace := traceLimiter(ctx, lim)
	if f.faultRate > 0 {
		go faultWindow(ctx, emu, f)
	}
	before, start := selfUsage(), time.Now()
	sum, err := backfill.Run(ctx, backfill.Options{
		Reconciler: cl.reconciler(p), Enumerator: cl.dir, Concurrency: f.concurrency,
		MaxRevokes:   -1, // the brake is the operator's; the bench measures the work behind it
		DeletedSince: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		Logger:       slog.New(slog.DiscardHandler), Limiter: lim,
	})
	elapsed, after := time.Since(start), selfUsage()
	cancel()
	stopProfile()
	if err != nil && !errors.Is(err, backfill.ErrPrincipalsFailed) {
		return backfillResult{}, err
	}
	principals, wrong := check(emu.acs, dir, p, seeded.foreign)
	graphCalls, acsCalls := cl.calls()
	n := float64(principals)
	r := backfillResult{
		Users: principals, Seconds: round3(elapsed.Seconds()), UsersPerSec: round1(n / elapsed.Seconds()),
		GraphCalls: graphCalls, ACSReads: sum.ACSReads, ACSWrites: sum.ACSWrites,
		Correct: len(wrong) == 0 && sum.Failed() == 0, PeakRSSMB: mb(after.peakRSSKB),
		LimiterMin: sum.Limiter.Min, LimiterMax: sum.Limiter.Max, LimiterFinal: sum.Limiter.Current,
		Throttles: sum.Limiter.Throttles, LimiterTrace: <-trace, Candidates: sum.Candidates,
		Grants: sum.Applied[worker.ActionGrant], Revokes: sum.Applied[worker.ActionRevoke],
		Wrong: len(wrong), Failed: sum.Failed(), Emulators: "in process",
		CPUPerUser: round1(float64((after.cpu - before.cpu).Microseconds()) / n),
	}
	if calls := float64(graphCalls + acsCalls); calls > 0 {
		r.Bound = round1(float64(f.concurrency) / (calls / n * f.latency.Seconds()))
		r.Ratio = round3(r.UsersPerSec / r.Bound)
	}
	if f.faultRate > 0 {
		r.Faults = fmt.Sprintf("429 with Retry-After: 1 on %g of requests from %s to %s", f.faultRate,
			f.faultStart, f.faultStart+f.faultDuration)
	}
	if seeded.grants != r.Grants || seeded.revokes != r.Revokes {
		r.Correct = false
	}
	return r, nil
}

// faultWindow throttles f.faultRate of both emulators' requests between faultStart and
// faultStart+faultDuration: a throttling episode the limiter must ride out and recover from.
func faultWindow(ctx context.Context, emu *emulators, f backfillFlags) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(f.faultStart):
	}
	emu.setFaults(f.faultRate, f.seed, acstest.FaultThrottle)
	defer emu.setFaults(0, f.seed)
	select {
	case <-ctx.Done():
	case <-time.After(f.faultDuration):
	}
}

// traceLimiter samples the limiter's concurrency once a second until ctx ends, then sends
// the samples.
func traceLimiter(ctx context.Context, l *limiter.Adaptive) <-chan []int {
	out := make(chan []int, 1)
	go func() {
		var samples []int
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				out <- samples
				return
			case <-tick.C:
				samples = append(samples, l.Stats().Current)
			}
		}
	}()
	return out
}
