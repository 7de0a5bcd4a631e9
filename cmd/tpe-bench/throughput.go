package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	// Emulators says where the emulators ran; in a child process their CPU and peak RSS
	// are reported apart and are not in cpu_us_per_msg and peak_rss_mb.
	Emulators    string  `json:"emulators"`
	EmuCPUPerMsg float64 `json:"emulator_cpu_us_per_msg,omitempty"`
	EmuPeakRSSMB float64 `json:"emulator_peak_rss_mb,omitempty"`
}

type throughputFlags struct {
	messages, concurrency, users int
	latency, graphLatency        time.Duration
	acsLatency                   time.Duration
	seed                         int64
	inProcess                    bool
	cpuprofile                   string
}

func runThroughput(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f throughputFlags
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.messages, "messages", 20000, "notification messages to work")
	fs.IntVar(&f.concurrency, "concurrency", 64, "worker concurrency (messages at once)")
	fs.IntVar(&f.users, "users", 10000, "generated directory size")
	fs.DurationVar(&f.latency, "latency", 20*time.Millisecond, "latency added to every emulator answer")
	fs.DurationVar(&f.graphLatency, "graph-latency", -1, "Graph latency (default --latency)")
	fs.DurationVar(&f.acsLatency, "acs-latency", -1, "ACS latency (default --latency)")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the directory, the ACS seeding and the messages")
	fs.BoolVar(&f.inProcess, "in-process", false, "run the emulators in this process (their CPU and memory then count)")
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to `FILE`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.messages <= 0 || f.concurrency <= 0 || f.users <= 0 {
		return fmt.Errorf("--messages, --concurrency and --users must be positive")
	}
	if f.graphLatency < 0 {
		f.graphLatency = f.latency
	}
	if f.acsLatency < 0 {
		f.acsLatency = f.latency
	}
	spec := worldSpec{users: f.users, seed: f.seed, revokeShare: 0.3, acsLatency: f.acsLatency, graphLatency: f.graphLatency}
	dir := graphtest.Generate(f.users, f.seed, graphtest.DefaultMix)
	info, stopEmu, err := serveWorld(ctx, spec, dir, f.inProcess, stderr)
	if err != nil {
		return err
	}
	res, err := throughput(ctx, f, dir, info)
	emu := stopEmu()
	if err != nil {
		return err
	}
	res.Emulators = "child process"
	if f.inProcess {
		res.Emulators = "in process"
	} else if res.Messages > 0 {
		res.EmuCPUPerMsg = round1(float64(emu.cpu.Microseconds()) / float64(res.Messages))
		res.EmuPeakRSSMB = mb(emu.peakRSSKB)
	}
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

func throughput(ctx context.Context, f throughputFlags, dir *graphtest.Directory, info childInfo) (throughputResult, error) {
	cl, err := newClients(clientSettings{acsConnectionString: info.ACSConnectionString, graphURL: info.GraphURL,
		tenantID: dir.TenantID(), idleConns: 2 * f.concurrency})
	if err != nil {
		return throughputResult{}, err
	}
	msgs := newMessageGen(dir, f.seed)
	q := newQueue(f.messages, msgs.body, 0)
	w, err := worker.New(q, cl.reconciler(benchPolicy()), cl.dir, worker.Options{
		Concurrency: f.concurrency,
		Trust:       worker.Trust{TenantID: dir.TenantID(), ClientState: benchClientState},
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return throughputResult{}, err
	}
	stopProfile, err := startProfile(f.cpuprofile)
	if err != nil {
		return throughputResult{}, err
	}
	before, start := selfUsage(), time.Now()
	err = w.Run(ctx)
	elapsed, after := time.Since(start), selfUsage()
	stopProfile()
	if err != nil {
		return throughputResult{}, err
	}
	if ctx.Err() != nil {
		return throughputResult{}, errors.New("interrupted")
	}
	graphCalls, acsCalls := cl.calls()
	qs, ws := q.stats(), w.Stats()
	n := float64(f.messages)
	// Each message's calls run one after another, each taking its service's latency.
	perMsg := (float64(graphCalls)*f.graphLatency.Seconds() + float64(acsCalls)*f.acsLatency.Seconds()) / n
	r := throughputResult{
		Messages: f.messages, Seconds: round3(elapsed.Seconds()), MsgsPerSec: round1(n / elapsed.Seconds()),
		GraphCalls: graphCalls, ACSCalls: acsCalls,
		CPUPerMsg:   round1(float64((after.cpu - before.cpu).Microseconds()) / n),
		PeakRSSMB:   mb(after.peakRSSKB),
		CallsPerMsg: round3(float64(graphCalls+acsCalls) / n),
		Completed:   qs.completed, DeadLettered: qs.deadLettered(), Coalesced: ws.Coalesced,
		Grants: ws.Reconciles[worker.ActionGrant], Revokes: ws.Reconciles[worker.ActionRevoke],
		Noops: ws.Reconciles[worker.ActionNoop],
	}
	if perMsg > 0 {
		r.Bound = round1(float64(f.concurrency) / perMsg)
		r.Ratio = round3(r.MsgsPerSec / r.Bound)
	}
	return r, nil
}
