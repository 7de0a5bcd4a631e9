package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Logs are text on a terminal and JSON elsewhere unless TPE_LOG_FORMAT says; durations
// read as 1.5s in both.
func TestLogFormatFollowsTheTerminalAndDurationsAreReadable(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if isTerminal(devNull) {
		t.Errorf("%s counts as a terminal", os.DevNull)
	}
	cases := []struct {
		format   string
		terminal bool
		want     string // how the duration attribute reads
	}{
		{"auto", false, `"took":"1.5s"`},
		{"auto", true, `took=1.5s`},
		{"json", true, `"took":"1.5s"`},
		{"text", false, `took=1.5s`},
	}
	for _, tc := range cases {
		old := logIsTerminal
		logIsTerminal = func(io.Writer) bool { return tc.terminal }
		var buf bytes.Buffer
		newLogger(&buf, tc.format, "info").Info("drained", "took", 1500*time.Millisecond,
			slog.Group("drain", slog.Duration("timeout", 30*time.Second)))
		logIsTerminal = old
		got := buf.String()
		isJSON := json.Valid(bytes.TrimSpace(buf.Bytes()))
		nested := `"timeout":"30s"`
		if !isJSON {
			nested = "drain.timeout=30s"
		}
		if !strings.Contains(got, tc.want) || !strings.Contains(got, nested) || isJSON != strings.HasPrefix(tc.want, `"`) {
			t.Errorf("format %s, terminal %v: %q; want %s and %s", tc.format, tc.terminal, got, tc.want, nested)
		}
	}
	for _, v := range []string{"auto", "json", "text"} {
		c := Config{LogFormat: v, LogLevel: "info", ACSResourceAccountType: "teamsResourceAccount", Concurrency: 1, MessageTimeout: time.Second, MaxRevokes: 1}
		if err := c.Validate(needs{}); err != nil {
			t.Errorf("TPE_LOG_FORMAT=%s: %v", v, err)
		}
	}
}

// run says when it starts draining (how many messages are in flight) and when it has
// stopped (how long the drain took).
func TestRunLogsDrainingAndStopped(t *testing.T) {
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	fifo := filepath.Join(t.TempDir(), "events.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- runRun(ctx, []string{"--source", "file:" + fifo}, &stdout, &stderr) }()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // the writer keeps the source open
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"worker started"`) {
		if time.Now().After(deadline) {
			t.Fatalf("run did not start\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not stop\n%s", stderr.String())
	}
	logs := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			logs[rec["msg"].(string)] = rec
		}
	}
	draining, stopped := logs["draining"], logs["stopped"]
	if draining == nil || draining["in_flight"] != float64(0) {
		t.Errorf("no draining line with in_flight 0: %v\n%s", draining, stderr.String())
	}
	if d, ok := stopped["drain_took"].(string); !ok || !strings.HasSuffix(d, "s") {
		t.Errorf("no stopped line with a readable drain_took: %v\n%s", stopped, stderr.String())
	}
}
