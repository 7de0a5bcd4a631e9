package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
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
