package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets this test binary act as tpe-bench when started as the emulator child.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(realMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// run runs one subcommand and decodes its JSON line.
func run(t *testing.T, wantCode int, args ...string) map[string]any {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := realMain(context.Background(), args, &out, &errOut); code != wantCode {
		t.Fatalf("tpe-bench %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, &out, &errOut)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, &out)
	}
	if strings.Contains(out.String()+errOut.String(), benchClientState) {
		t.Error("the output holds the client state")
	}
	return got
}

func requireFields(t *testing.T, got map[string]any, fields ...string) {
	t.Helper()
	for _, f := range fields {
		if _, ok := got[f]; !ok {
			t.Errorf("field %q missing from %v", f, got)
		}
	}
}

func num(got map[string]any, k string) float64 { f, _ := got[k].(float64); return f }

func TestThroughputWorksEveryMessageWithinTheBound(t *testing.T) {
	for _, mode := range []string{"--in-process", "--in-process=false"} {
		t.Run(mode, func(t *testing.T) {
			got := run(t, 0, "throughput", "--messages", "200", "--users", "300", "--latency", "1ms",
				"--concurrency", "8", mode)
			requireFields(t, got, "messages", "seconds", "msgs_per_sec", "bound_msgs_per_sec", "ratio",
				"graph_calls", "acs_calls", "cpu_us_per_msg", "peak_rss_mb")
			if num(got, "messages") != 200 || num(got, "completed") != 200 || num(got, "dead_lettered") != 0 {
				t.Errorf("messages %v completed %v dead-lettered %v, want 200, 200, 0", got["messages"], got["completed"], got["dead_lettered"])
			}
			// Every message reads Graph (user, scope) and ACS at least once, minus coalesced duplicates.
			if calls := num(got, "calls_per_msg"); calls < 2 || calls > 5 {
				t.Errorf("calls per message = %v, want 2..5", calls)
			}
			if num(got, "grants") == 0 || num(got, "revokes") == 0 || num(got, "noops") == 0 {
				t.Errorf("want grants, revokes and no-ops in the mix: %v", got)
			}
			if r := num(got, "ratio"); r <= 0 || r > 1.05 {
				t.Errorf("ratio = %v: the run cannot beat the latency bound", r)
			}
		})
	}
}

func TestBackfillConvergesAndTheLimiterRidesOutThrottling(t *testing.T) {
	got := run(t, 0, "backfill", "--users", "1000", "--latency", "1ms", "--concurrency", "8",
		"--fault-rate", "0.3", "--fault-start", "0s", "--fault-duration", "300ms")
	requireFields(t, got, "users", "seconds", "users_per_sec", "bound_users_per_sec", "ratio", "graph_calls",
		"acs_reads", "acs_writes", "correct", "peak_rss_mb", "limiter_min", "limiter_max")
	if got["correct"] != true || num(got, "wrong") != 0 {
		t.Errorf("correct = %v, wrong = %v", got["correct"], got["wrong"])
	}
	if num(got, "grants") != 100 || num(got, "revokes") != 20 {
		t.Errorf("grants %v revokes %v, want 10%% and 2%% of 1000", got["grants"], got["revokes"])
	}
	if num(got, "throttles") == 0 || num(got, "limiter_min") >= num(got, "limiter_max") {
		t.Errorf("the limiter did not back off under throttling: %v", got)
	}
}

func TestChaosConvergesDespiteFaultsAndRestarts(t *testing.T) {
	got := run(t, 0, "chaos", "--messages", "150", "--users", "40", "--fault-rate", "0.2", "--seed", "3",
		"--message-timeout", "1s", "--max-delivery", "3")
	requireFields(t, got, "principals", "converged", "wrong", "lost_messages", "dead_lettered", "dead_letter_reasons")
	if got["converged"] != true || num(got, "wrong") != 0 || num(got, "lost_messages") != 0 {
		t.Errorf("not converged: %v", got)
	}
	if num(got, "restarts") < 1 || num(got, "faults_injected") == 0 {
		t.Errorf("want at least one restart and some faults: %v", got)
	}
	if num(got, "completed")+num(got, "dead_lettered") != num(got, "messages") {
		t.Errorf("completed + dead-lettered != messages: %v", got)
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := realMain(context.Background(), []string{"bogus"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}

func TestLatencySplitsByOutcomeAndNoMessageBeatsItsCriticalPath(t *testing.T) {
	const d = 5.0 // ms, both services
	got := run(t, 0, "latency", "--messages", "300", "--users", "300", "--latency", "5ms", "--concurrency", "8")
	requireFields(t, got, "p50_ms", "p95_ms", "p99_ms", "max_ms", "noop_p50_ms", "write_p50_ms",
		"noop_round_trips", "write_round_trips", "bound_ms", "noop_bound_ms", "write_bound_ms",
		"graph_ru_per_msg", "graph_calls_per_msg", "graph_requests_per_msg", "acs_calls_per_msg", "msgs_per_sec",
		"cpu_us_per_msg", "peak_rss_mb", "round_trip_ms", "by_outcome", "emulators")
	if num(got, "completed") != 300 || num(got, "errors") != 0 || num(got, "dead_lettered") != 0 {
		t.Errorf("completed %v errors %v dead-lettered %v, want 300, 0, 0", got["completed"], got["errors"], got["dead_lettered"])
	}
	if num(got, "round_trip_ms") != d {
		t.Errorf("round_trip_ms = %v, want %v", got["round_trip_ms"], d)
	}
	// Every message reads Graph before anything else can be decided: at least one round trip.
	if p50 := num(got, "p50_ms"); p50 < d {
		t.Errorf("p50_ms = %v, want at least one round trip (%v ms)", p50, d)
	}
	// A write follows at least one read.
	if w := num(got, "write_p50_ms"); w < 2*d {
		t.Errorf("write_p50_ms = %v, want at least two round trips (%v ms)", w, 2*d)
	}
	// Each message takes at least its own critical path, so the medians are ordered too.
	for _, k := range []string{"", "noop_", "write_"} {
		if p, b := num(got, k+"p50_ms"), num(got, k+"bound_ms"); b <= 0 || p < b {
			t.Errorf("%sp50_ms = %v below its critical-path bound %v (or no bound)", k, p, b)
		}
	}
	if p50, p99, mx := num(got, "p50_ms"), num(got, "p99_ms"), num(got, "max_ms"); p99 < p50 || mx < p99 {
		t.Errorf("p50 %v, p99 %v, max %v are not ordered", p50, p99, mx)
	}
	calls, reqs, ru := num(got, "graph_calls_per_msg"), num(got, "graph_requests_per_msg"), num(got, "graph_ru_per_msg")
	if calls < 0.9 || reqs < calls || ru < reqs || ru > 5*reqs {
		t.Errorf("graph calls %v, requests %v and resource units %v per message: want ≥ 0.9 calls, at least as many requests, 1..5 units each",
			calls, reqs, ru)
	}
	if a := num(got, "acs_calls_per_msg"); a < 0.9 || a > 2.1 {
		t.Errorf("acs_calls_per_msg = %v, want a read and at most a write", a)
	}
	if num(got, "cpu_us_per_msg") <= 0 || num(got, "peak_rss_mb") <= 0 || num(got, "msgs_per_sec") <= 0 {
		t.Errorf("cpu, rss or rate missing: %v", got)
	}
	by, _ := got["by_outcome"].(map[string]any)
	total := 0.0
	for _, o := range []string{"noop", "grant", "revoke"} {
		g, _ := by[o].(map[string]any)
		if num(g, "count") == 0 {
			t.Errorf("no %s in the mix: %v", o, by)
		}
	}
	for _, g := range by {
		if m, ok := g.(map[string]any); ok {
			total += num(m, "count")
		}
	}
	if w, _ := by["write"].(map[string]any); w != nil {
		total -= num(w, "count") // grant + revoke again
	}
	if total != 300 {
		t.Errorf("outcome counts add up to %v, want 300: %v", total, by)
	}
}

func TestCompareRunsTheOtherBuildWithTheSameFlags(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, 0, "throughput", "--messages", "120", "--users", "300", "--latency", "1ms", "--concurrency", "4",
		"--compare", self)
	cmp, _ := got["compare"].(map[string]any)
	other, _ := cmp["result"].(map[string]any)
	if cmp["binary"] != self || num(other, "messages") != 120 || num(other, "completed") != 120 {
		t.Fatalf("compare = %v, want the other build's line for the same 120 messages", cmp)
	}
	if _, nested := other["compare"]; nested {
		t.Error("the other build was given --compare too")
	}
	ratios, _ := cmp["ratios"].(map[string]any)
	want := num(got, "msgs_per_sec") / num(other, "msgs_per_sec")
	if r := num(ratios, "msgs_per_sec"); r <= 0 || r < want-0.001 || r > want+0.001 {
		t.Errorf("msgs_per_sec ratio = %v, want %v", r, want)
	}
}

func TestWithoutCompareDropsTheFlagInEveryForm(t *testing.T) {
	for _, args := range [][]string{
		{"--compare", "/bin/x", "--messages", "5"},
		{"--messages", "5", "-compare=/bin/x"},
		{"--compare=/bin/x", "--messages", "5"},
		{"-compare", "/bin/x", "--messages", "5"},
	} {
		if got := strings.Join(withoutCompare(args), " "); got != "--messages 5" {
			t.Errorf("withoutCompare(%q) = %q, want %q", args, got, "--messages 5")
		}
	}
}

func TestTheEmulatorChildsUsageIsItsOwn(t *testing.T) {
	c, err := startChild(context.Background(), worldSpec{users: 50, seed: 1, revokeShare: 0.3}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Another child of this process (a --compare run, say) burns CPU and ends first.
	busy := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	if err := busy.Run(); err != nil {
		t.Fatal(err)
	}
	busyCPU := busy.ProcessState.UserTime() + busy.ProcessState.SystemTime()
	if got := c.stop(); got.cpu <= 0 || got.cpu >= busyCPU {
		t.Errorf("emulator child CPU = %s, want its own (> 0), not the other child's %s", got.cpu, busyCPU)
	}
}
