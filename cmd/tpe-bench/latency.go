package main

import (
	"context"
	"flag"
	"io"
	"math"
	"slices"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// latencyResult is the latency line: how long a message takes from receive to settle,
// overall and by outcome, next to its critical-path bound (the round trips the message
// waited for one after another, each at its service's configured latency; trace.go), and
// what it costs in calls, Graph resource units, CPU and memory.
type latencyResult struct {
	Messages       int     `json:"messages"`
	Concurrency    int     `json:"concurrency"`
	GraphLatencyMS float64 `json:"graph_latency_ms"`
	ACSLatencyMS   float64 `json:"acs_latency_ms"`
	// RoundTripMS is the unit of the *_round_trips fields: the mean of the two latencies.
	RoundTripMS float64 `json:"round_trip_ms"`
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgs_per_sec"`

	P50MS      float64 `json:"p50_ms"`
	P95MS      float64 `json:"p95_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	RoundTrips float64 `json:"round_trips"` // p50_ms in round trips
	BoundMS    float64 `json:"bound_ms"`    // median critical-path bound
	// Queued is how many messages waited more than half a round trip before their first call
	// (behind another message about the same principal: the worker runs one reconcile per
	// principal at a time).
	Queued int `json:"queued"`

	NoopP50MS       float64 `json:"noop_p50_ms"`
	NoopP99MS       float64 `json:"noop_p99_ms"`
	NoopRoundTrips  float64 `json:"noop_round_trips"`
	NoopBoundMS     float64 `json:"noop_bound_ms"`
	WriteP50MS      float64 `json:"write_p50_ms"`
	WriteP99MS      float64 `json:"write_p99_ms"`
	WriteRoundTrips float64 `json:"write_round_trips"`
	WriteBoundMS    float64 `json:"write_bound_ms"`

	// ByOutcome holds the figures of each group: noop, grant, revoke, write (grant and
	// revoke together), and when they occur skip, coalesced (a duplicate answered by another
	// message's reconcile), error, abandoned, dead_lettered, released.
	ByOutcome map[string]latencyFigures `json:"by_outcome"`

	// Calls per message, counted at the transport (retries included), over all messages.
	// A Graph call is one HTTP request; GraphRequestsPerMsg counts a $batch's inner
	// requests one by one (each is throttled and costed on its own).
	GraphCallsPerMsg    float64 `json:"graph_calls_per_msg"`
	GraphRequestsPerMsg float64 `json:"graph_requests_per_msg"`
	ACSCallsPerMsg      float64 `json:"acs_calls_per_msg"`
	GraphRUPerMsg       float64 `json:"graph_ru_per_msg"`
	// UnattributedCalls are calls that named no principal, or none a message reported.
	UnattributedCalls int `json:"unattributed_calls"`

	CPUPerMsg    float64 `json:"cpu_us_per_msg"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	Completed    int     `json:"completed"`
	DeadLettered int     `json:"dead_lettered"`
	Errors       int     `json:"errors"`
	Coalesced    int     `json:"coalesced"`
	emulatorReport
	Compare *comparison `json:"compare,omitempty"`
}

// latencyFigures are one group's latency percentiles and per-message costs. The bound and
// the critical-path calls are medians over the group's messages.
type latencyFigures struct {
	Count      int     `json:"count"`
	P50MS      float64 `json:"p50_ms"`
	P95MS      float64 `json:"p95_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	RoundTrips float64 `json:"round_trips"`
	BoundMS    float64 `json:"bound_ms"`
	PathCalls  float64 `json:"critical_path_calls"`
	// Wait is the time from receive to the message's first call: the time it queued inside
	// the worker (behind another message about the same principal, say).
	WaitP50MS float64 `json:"wait_p50_ms"`
	WaitP99MS float64 `json:"wait_p99_ms"`
	// Queued counts the messages that waited more than half a round trip before their first
	// call.
	Queued        int     `json:"queued"`
	GraphCalls    float64 `json:"graph_calls_per_msg"`
	GraphRequests float64 `json:"graph_requests_per_msg"`
	ACSCalls      float64 `json:"acs_calls_per_msg"`
	GraphRUPerMsg float64 `json:"graph_ru_per_msg"`
}

func runLatency(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f queueFlags
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs, 3000, 16, 50*time.Millisecond)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	base, err := runBaseline(ctx, f.compare, "latency", args, stderr)
	if err != nil {
		return err
	}
	t := newTracer()
	run, emu, err := runQueue(ctx, f, queueHooks{transport: t.transport, source: t.source, observer: t}, stderr)
	if err != nil {
		return err
	}
	traces, unattributed := t.traces()
	res := latency(f, run, traces)
	res.UnattributedCalls = unattributed
	res.GraphRequestsPerMsg = round3(float64(t.requests()) / float64(f.messages))
	res.emulatorReport = newEmulatorReport(f.inProcess, emu, res.Messages)
	res.Compare = base.against(res)
	return printJSON(stdout, res)
}

func latency(f queueFlags, run queueRun, traces []*msgTrace) latencyResult {
	rt := (f.graphLatency + f.acsLatency) / 2
	groups := map[string][]*msgTrace{}
	ru := 0
	for _, m := range traces {
		o := m.outcome()
		groups[o] = append(groups[o], m)
		if o == string(worker.ActionGrant) || o == string(worker.ActionRevoke) {
			groups["write"] = append(groups["write"], m)
		}
		for _, c := range m.calls {
			ru += c.ru
		}
	}
	by := make(map[string]latencyFigures, len(groups))
	for o, group := range groups {
		by[o] = figures(group, f.graphLatency, f.acsLatency, rt)
	}
	all := figures(traces, f.graphLatency, f.acsLatency, rt)
	n := float64(f.messages)
	return latencyResult{
		Messages: f.messages, Concurrency: f.concurrency,
		GraphLatencyMS: ms(f.graphLatency), ACSLatencyMS: ms(f.acsLatency), RoundTripMS: ms(rt),
		Seconds: round3(run.elapsed.Seconds()), MsgsPerSec: round1(n / run.elapsed.Seconds()),
		P50MS: all.P50MS, P95MS: all.P95MS, P99MS: all.P99MS, MaxMS: all.MaxMS, RoundTrips: all.RoundTrips,
		BoundMS: all.BoundMS, Queued: all.Queued,
		NoopP50MS: by["noop"].P50MS, NoopP99MS: by["noop"].P99MS, NoopRoundTrips: by["noop"].RoundTrips,
		NoopBoundMS: by["noop"].BoundMS,
		WriteP50MS:  by["write"].P50MS, WriteP99MS: by["write"].P99MS, WriteRoundTrips: by["write"].RoundTrips,
		WriteBoundMS:     by["write"].BoundMS,
		ByOutcome:        by,
		GraphCallsPerMsg: round3(float64(run.graphCalls) / n), ACSCallsPerMsg: round3(float64(run.acsCalls) / n),
		GraphRUPerMsg: round3(float64(ru) / n),
		CPUPerMsg:     run.cpuPerMsg(f.messages), PeakRSSMB: mb(run.peakRSSKB),
		Completed: run.queue.completed, DeadLettered: run.queue.deadLettered(), Errors: run.worker.Errors,
		Coalesced: run.worker.Coalesced,
	}
}

// figures summarizes one group of messages; rt is the round trip the latencies are
// expressed in.
func figures(group []*msgTrace, graph, acs, rt time.Duration) latencyFigures {
	if len(group) == 0 {
		return latencyFigures{}
	}
	lat := make([]time.Duration, len(group))
	bounds := make([]time.Duration, len(group))
	paths := make([]time.Duration, len(group)) // call counts, sorted as durations
	var f latencyFigures
	var waits []time.Duration
	var graphCalls, graphRequests, acsCalls, ru int
	for i, m := range group {
		lat[i] = m.latency
		if len(m.calls) > 0 {
			first := slices.MinFunc(m.calls, func(a, b call) int { return a.start.Compare(b.start) })
			w := first.start.Sub(m.received)
			waits = append(waits, w)
			if 2*w > rt {
				f.Queued++
			}
		}
		n, b := criticalPath(m.calls, graph, acs)
		bounds[i], paths[i] = b, time.Duration(n)
		for _, c := range m.calls {
			if c.graph {
				graphCalls++
				graphRequests += c.requests
				ru += c.ru
			} else {
				acsCalls++
			}
		}
	}
	slices.Sort(lat)
	k := float64(len(group))
	f.Count = len(group)
	f.P50MS, f.P95MS, f.P99MS = ms(percentile(lat, 0.5)), ms(percentile(lat, 0.95)), ms(percentile(lat, 0.99))
	f.MaxMS = ms(lat[len(lat)-1])
	f.BoundMS = ms(percentile(sorted(bounds), 0.5))
	f.PathCalls = float64(percentile(sorted(paths), 0.5))
	f.WaitP50MS, f.WaitP99MS = ms(percentile(sorted(waits), 0.5)), ms(percentile(sorted(waits), 0.99))
	f.GraphCalls, f.ACSCalls = round3(float64(graphCalls)/k), round3(float64(acsCalls)/k)
	f.GraphRequests = round3(float64(graphRequests) / k)
	f.GraphRUPerMsg = round3(float64(ru) / k)
	if rt > 0 {
		f.RoundTrips = round3(f.P50MS / ms(rt))
	}
	return f
}

// percentile is the nearest-rank p-quantile of sorted ds; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func sorted(ds []time.Duration) []time.Duration {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

// ms is d in milliseconds, to three decimals.
func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }
