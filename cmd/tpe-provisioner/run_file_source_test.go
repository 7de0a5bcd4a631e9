package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleEventsCopy copies the sample events into a temp dir and returns the copy's path.
func sampleEventsCopy(t *testing.T) string {
	t.Helper()
	events := filepath.Join(t.TempDir(), "sample-events.jsonl")
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/local/sample-events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(events, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return events
}

// A one-shot file replay leaves the ops port alone unless it is asked for: with
// TPE_HTTP_LISTEN unset it succeeds while the default port is taken; a rerun adds its dead
// letters to the previous run's.
func TestRunFileSourceBindsNoOpsPortByDefaultAndKeepsDeadLetters(t *testing.T) {
	// Not parallel: it swaps environ.
	emu := startLocalEmulators(t)
	env := emulatorEnv(emu)
	delete(env, "TPE_HTTP_LISTEN")
	withEnviron(t, env)
	if ln, err := net.Listen("tcp", ":8080"); err == nil { // else something else holds it: as good
		defer ln.Close()
	}
	events := sampleEventsCopy(t)
	for run := 1; run <= 2; run++ {
		var stdout, stderr lockedBuffer
		if code := realMain([]string{"run", "--source", "file:" + events}, &stdout, &stderr); code != 0 {
			t.Fatalf("run %d: exit %d\nstderr:\n%s", run, code, stderr.String())
		}
	}
	data, err := os.ReadFile(events + ".deadletter.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 4 {
		t.Fatalf("dead-letter file after two runs has %d lines, want 2 per run:\n%s", n, data)
	}
}

// An ops address set explicitly is still served, and a run that cannot bind it fails to
// start without touching the previous run's dead letters.
func TestRunFileSourceExplicitOpsPortFailsToStartAndKeepsDeadLetters(t *testing.T) {
	// Not parallel: it swaps environ.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	emu := startLocalEmulators(t)
	env := emulatorEnv(emu)
	env["TPE_HTTP_LISTEN"] = ln.Addr().String()
	withEnviron(t, env)
	events := sampleEventsCopy(t)
	const previous = `{"line":11,"reason":"untrusted","description":"earlier run","body":{}}` + "\n"
	if err := os.WriteFile(events+".deadletter.jsonl", []byte(previous), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr lockedBuffer
	if code := realMain([]string{"run", "--source", "file:" + events}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "TPE_HTTP_LISTEN") {
		t.Fatalf("run on a taken explicit ops address: exit %d, want a TPE_HTTP_LISTEN error\nstderr:\n%s", code, stderr.String())
	}
	if data, err := os.ReadFile(events + ".deadletter.jsonl"); err != nil || string(data) != previous {
		t.Fatalf("dead-letter file after a failed start = %q (%v), want the previous run's %q", data, err, previous)
	}
	if len(emu.acs.Assignments()) != 0 {
		t.Errorf("a run that failed to start wrote to ACS")
	}
}
