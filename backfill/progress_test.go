package backfill

import (
	"strings"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
)

func TestRenderProgress(t *testing.T) {
	tests := []struct {
		name     string
		s        progressSnapshot
		terminal bool
		want     string
	}{
		{"log line while enumerating", progressSnapshot{"plan", 1200, -1, 10 * time.Second}, false,
			"backfill plan: done=1200 total=enumerating rate=120/s elapsed=10s"},
		{"log line with ETA", progressSnapshot{"plan", 1200, 3000, 10 * time.Second}, false,
			"backfill plan: done=1200 total=3000 rate=120/s elapsed=10s eta=0:15"},
		{"log line before any progress", progressSnapshot{"apply", 0, 50, 0}, false,
			"backfill apply: done=0 total=50 rate=0/s elapsed=0s eta=?"},
		{"bar while enumerating", progressSnapshot{"plan", 1200, -1, 10 * time.Second}, true,
			"plan  1200 principals, 120/s (enumerating)"},
		{"bar half way", progressSnapshot{"apply", 50, 100, 25 * time.Second}, true,
			"apply [===============               ] 50/100 2/s ETA 0:25"},
		{"bar past an hour", progressSnapshot{"plan", 1, 10000, time.Second}, true,
			"plan  [                              ] 1/10000 1/s ETA 2:46:39"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renderProgress(tt.s, tt.terminal); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestProgressMeterLogsEveryFiveSeconds(t *testing.T) {
	clock := clk.NewFake()
	var out wt.LogSink
	p := startProgress(&out, false, clock, "plan", -1)
	p.add(10)
	clock.WaitForWaiters(t, 1)
	clock.Advance(4 * time.Second)
	if got := out.String(); got != "" {
		t.Fatalf("printed %q before five seconds", got)
	}
	clock.Advance(time.Second)
	clock.WaitForWaiters(t, 1) // drawn, and waiting for the next tick
	p.setTotal(40)
	p.add(5)
	clock.Advance(5 * time.Second)
	clock.WaitForWaiters(t, 1)
	p.finish()
	want := []string{
		"backfill plan: done=10 total=enumerating rate=2/s elapsed=5s",
		"backfill plan: done=15 total=40 rate=2/s elapsed=10s eta=0:17",
		"backfill plan: done=15 total=40 rate=2/s elapsed=10s eta=0:17", // final
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range out.Writes() { // one whole line per write: nothing can run into it
		if strings.Count(w, "\n") != 1 || !strings.HasSuffix(w, "\n") {
			t.Errorf("write %q: want exactly one line, ending in a newline", w)
		}
	}
}

func TestProgressMeterRedrawsBarInPlace(t *testing.T) {
	clock := clk.NewFake()
	var out wt.LogSink
	p := startProgress(&out, true, clock, "apply", 4)
	p.add(2)
	clock.WaitForWaiters(t, 1)
	clock.Advance(time.Second)
	clock.WaitForWaiters(t, 1)
	p.add(2)
	p.finish()
	got := out.String()
	if strings.Count(got, "\r") != 2 || !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("output %q: want two in-place redraws and one final newline", got)
	}
	if !strings.Contains(got, "] 4/4 ") {
		t.Errorf("output %q: want the final 4/4", got)
	}
	// The final bar and its newline are one write: a log record written meanwhile by
	// another goroutine cannot land between them.
	writes := out.Writes()
	if last := writes[len(writes)-1]; !strings.HasPrefix(last, "\r") || !strings.HasSuffix(last, "\n") {
		t.Errorf("last write %q: want the final bar ending its line", last)
	}
}

func TestNilProgressMeterIsQuiet(t *testing.T) {
	p := startProgress(nil, true, clk.NewFake(), "plan", -1)
	p.add(1) // must not panic
	p.setTotal(1)
	p.finish()
}
