package sbtest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// runNodeTest runs one node:test script from node/test against s and fails t on any
// failure in it. The script finds the endpoint in SBTEST_CONNECTION_STRING and the queue
// in SBTEST_QUEUE; env adds more variables. Start has already skipped (or failed, under
// CI) when node is missing, and installed the npm dependencies.
func runNodeTest(t *testing.T, s *sbtest.Server, script string, within time.Duration, env ...string) {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "node")
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", filepath.Join("test", script))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SBTEST_CONNECTION_STRING="+s.ConnectionString(), "SBTEST_QUEUE="+s.Queue())
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v (%v)\n%s", script, err, context.Cause(ctx), out)
	}
	t.Logf("node --test %s:\n%s", script, out)
}
