package sbtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Start launches an endpoint for one test and closes it when the test ends. The
// endpoint's diagnostics go to t.Log unless opts.Log is set. Without node on PATH the test
// is skipped, except under CI=true where that is a failure.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sbtest: node is not on PATH and CI=true: %v", err)
		}
		t.Skipf("sbtest: node is not on PATH (install Node.js 18+ to run the Service Bus tests): %v", err)
	}
	if opts.Log == nil {
		opts.Log = tbLog{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Launch(ctx, opts)
	if err != nil {
		t.Fatalf("sbtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sbtest: %v", err)
		}
	})
	return s
}

// tbLog writes each line to t.Log, which adds its own line break.
type tbLog struct{ t testing.TB }

func (l tbLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
