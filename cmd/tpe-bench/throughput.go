package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// throughputResult is the throughput line. The bound is what the latency allows:
// concurrency / (sequential calls per message × latency), with the calls per message
// measured from the run (Graph user read, checkMemberGroups, ACS GET, ACS write when
// something changed; duplicates coalesced by the worker cost less).
type throughputResult struct {
	Messages     int     `json:"messages"`
	Seconds      float64 `json:"seconds"`
	MsgsPerSec   float64 `json:"msgs_per_sec"`
	Bound        float64 `json:"bound_msgs_per_sec"`
	Ratio        float64 `json:"ratio"`
	GraphCalls   int64   `json:"graph_calls"`
	ACSCalls     int64   `json:"acs_calls"`
	CPUPerMsg    float64 `json:"cpu_us_per_msg"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	CallsPerMsg  float64 `json:"calls_per_msg"`
	Completed    int     `json:"completed"`
	DeadLettered int     `json:"dead_lettered"`
	Coalesced    int     `json:"coalesced"`
	Grants       int     `json:"grants"`
	Revokes      int     `json:"revokes"`
	Noops        int     `json:"noops"`
	emulatorReport
	Compare *comparison `json:"compare,omitempty"`
}

// emulatorReport says where the emulators ran; in a child process their CPU and peak RSS
// are reported apart and are not in cpu_us_per_msg and peak_rss_mb.
type emulatorReport struct {
	Emulators    string  `json:"emulators"`
	EmuCPUPerMsg float64 `json:"emulator_cpu_us_per_msg,omitempty"`
	EmuPeakRSSMB float64 `json:"emulator_peak_rss_mb,omitempty"`
}

func newEmulatorReport(inProcess bool, emu usage, messages int) emulatorReport {
	if inProcess {
		return emulatorReport{Emulators: "in process"}
	}
	r := emulatorReport{Emulators: "child process"}
	if messages > 0 {
		r.EmuCPUPerMsg = round1(float64(emu.cpu.Microseconds()) / float64(messages))
		r.EmuPeakRSSMB = mb(emu.peakRSSKB)
	}
	return r
}

// queueFlags are the flags of the benches that work generated notifications through
// worker.New (throughput, latency).
type queueFlags struct {
	messages, concurrency, users int
	latency, graphLatency        time.Duration
	acsLatency                   time.Duration
	seed                         int64
	inProcess                    bool
	cpuprofile                   string
	compare                      string
}

// register declares the flags on fs with the bench's defaults.
func (f *queueFlags) register(fs *flag.FlagSet, messages, concurrency int, latency time.Duration) {
	fs.IntVar(&f.messages, "messages", messages, "notification messages to work")
	fs.IntVar(&f.concurrency, "concurrency", concurrency, "worker concurrency (messages at once)")
	fs.IntVar(&f.users, "users", 10000, "generated directory size")
	fs.DurationVar(&f.latency, "latency", latency, "latency added to every emulator answer")
	fs.DurationVar(&f.graphLatency, "graph-latency", -1, "Graph latency (default --latency)")
	fs.DurationVar(&f.acsLatency, "acs-latency", -1, "ACS latency (default --latency)")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the directory, the ACS seeding and the messages")
	fs.BoolVar(&f.inProcess, "in-process", false, "run the emulators in this process (their CPU and memory then count)")
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to `FILE`")
	fs.StringVar(&f.compare, "compare", "", "first run `BIN` (another build of tpe-bench) with the same flags and report its line and the ratios too")
}

// check validates the parsed flags and fills the per-service latencies from --latency.
func (f *queueFlags) check() error {
	if f.messages <= 0 || f.concurrency <= 0 || f.users <= 0 {
		return fmt.Errorf("--messages, --concurrency and --users must be positive")
	}
	if f.latency < 0 {
		return fmt.Errorf("--latency must not be negative")
	}
	if f.graphLatency < 0 {
		f.graphLatency = f.latency
	}
	if f.acsLatency < 0 {
		f.acsLatency = f.latency
	}
	return nil
}

func runThroughput(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f queueFlags
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs, 20000, 64, 20*time.Millisecond)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	base, err := runBaseline(ctx, f.compare, "throughput", args, stderr)
	if err != nil {
		return err
	}
	run, emu, err := runQueue(ctx, f, queueHooks{}, stderr)
	if err != nil {
		return err
	}
	res := throughput(f, run)
	res.emulatorReport = newEmulatorReport(f.inProcess, emu, res.Messages)
	res.Compare = base.against(res)
	return printJSON(stdout, res)
}

// serveWorld runs the emulators for spec, in a child process or here (then seeded on dir),
// and returns how to reach them and how to stop them.
func serveWorld(ctx context.Context, spec worldSpec, dir *graphtest.Directory, inProcess bool, stderr io.Writer) (childInfo, func() usage, error) {
	if !inProcess {
		c, err := startChild(ctx, spec, stderr)
		if err != nil {
			return childInfo{}, nil, err
		}
		return c.info, c.stop, nil
	}
	emu, err := startEmulators(dir, emulatorSettings{acsLatency: spec.acsLatency, graphLatency: spec.graphLatency})
	if err != nil {
		return childInfo{}, nil, err
	}
	seedRandom(emu.acs, dir, benchPolicy(), spec.seed, spec.revokeShare)
	return childInfo{ACSConnectionString: emu.acsConnectionString(), GraphURL: emu.graphURL},
		func() usage { emu.close(); return usage{} }, nil
}

// queueHooks let a bench watch a queue run; nil members watch nothing.
type queueHooks struct {
	// transport decorates both clients' innermost transports.
	transport func(http.RoundTripper) http.RoundTripper
	// source decorates the queue the worker consumes.
	source func(worker.Source) worker.Source
	// observer is the worker's Observer.
	observer worker.Observer
}

// queueRun is what one run of the worker over the generated notifications measured.
type queueRun struct {
	elapsed              time.Duration
	cpu                  time.Duration // this process's user + system time during the run
	peakRSSKB            int64         // this process's peak resident set
	graphCalls, acsCalls int64
	queue                queueStats
	worker               worker.Stats
}

// runQueue generates the tenant, serves it (a child process unless --in-process), and works
// f.messages generated notifications through worker.New. It returns the run's measures and
// the emulators' usage (zero when in process).
func runQueue(ctx context.Context, f queueFlags, h queueHooks, stderr io.Writer) (queueRun, usage, error) {
	spec := worldSpec{users: f.users, seed: f.seed, revokeShare: 0.3, acsLatency: f.acsLatency, graphLatency: f.graphLatency}
	dir := graphtest.Generate(f.users, f.seed, graphtest.DefaultMix)
	info, stopEmu, err := serveWorld(ctx, spec, dir, f.inProcess, stderr)
	if err != nil {
		return queueRun{}, usage{}, err
	}
	run, err := workQueue(ctx, f, h, dir, info)
	emu := stopEmu()
	return run, emu, err
}

func workQueue(ctx context.Context, f queueFlags, h queueHooks, dir *graphtest.Directory, info childInfo) (queueRun, error) {
	cl, err := newClients(clientSettings{acsConnectionString: info.ACSConnectionString, graphURL: info.GraphURL,
		tenantID: dir.TenantID(), idleConns: 2 * f.concurrency, wrap: h.transport})
	if err != nil {
		return queueRun{}, err
	}
	msgs := newMessageGen(dir, f.seed)
	q := newQueue(f.messages, msgs.body, 0)
	var src worker.Source = q
	if h.source != nil {
		src = h.source(q)
	}
	w, err := worker.New(src, cl.reconciler(benchPolicy()), cl.dir, worker.Options{
		Concurrency: f.concurrency,
		Trust:       worker.Trust{TenantID: dir.TenantID(), ClientState: benchClientState},
		Logger:      slog.New(slog.DiscardHandler),
		Observer:    h.observer,
	})
	if err != nil {
		return queueRun{}, err
	}
	stopProfile, err := startProfile(f.cpuprofile)
	if err != nil {
		return queueRun{}, err
	}
	before, start := selfUsage(), time.Now()
	err = w.Run(ctx)
	elapsed, after := time.Since(start), selfUsage()
	stopProfile()
	if err != nil {
		return queueRun{}, err
	}
	if ctx.Err() != nil {
		return queueRun{}, errors.New("interrupted")
	}
	graphCalls, acsCalls := cl.calls()
	return queueRun{elapsed: elapsed, cpu: after.cpu - before.cpu, peakRSSKB: after.peakRSSKB,
		graphCalls: graphCalls, acsCalls: acsCalls, queue: q.stats(), worker: w.Stats()}, nil
}

// cpuPerMsg is the run's CPU time per message in microseconds.
func (r queueRun) cpuPerMsg(messages int) float64 {
	return round1(float64(r.cpu.Microseconds()) / float64(messages))
}

func throughput(f queueFlags, run queueRun) throughputResult {
	qs, ws := run.queue, run.worker
	n := float64(f.messages)
	// Each message's calls run one after another, each taking its service's latency.
	perMsg := (float64(run.graphCalls)*f.graphLatency.Seconds() + float64(run.acsCalls)*f.acsLatency.Seconds()) / n
	r := throughputResult{
		Messages: f.messages, Seconds: round3(run.elapsed.Seconds()), MsgsPerSec: round1(n / run.elapsed.Seconds()),
		GraphCalls: run.graphCalls, ACSCalls: run.acsCalls,
		CPUPerMsg:   run.cpuPerMsg(f.messages),
		PeakRSSMB:   mb(run.peakRSSKB),
		CallsPerMsg: round3(float64(run.graphCalls+run.acsCalls) / n),
		Completed:   qs.completed, DeadLettered: qs.deadLettered(), Coalesced: ws.Coalesced,
		Grants: ws.Reconciles[worker.ActionGrant], Revokes: ws.Reconciles[worker.ActionRevoke],
		Noops: ws.Reconciles[worker.ActionNoop],
	}
	if perMsg > 0 {
		r.Bound = round1(float64(f.concurrency) / perMsg)
		r.Ratio = round3(r.MsgsPerSec / r.Bound)
	}
	return r
}
