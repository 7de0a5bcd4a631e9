package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The crash test: the real binary is SIGKILLed in the middle of a run, with messages locked
// and writes in flight, and started again. Nothing may be lost or burnt: every message ends
// completed or dead-lettered with its own reason, and ACS converges to the policy.

// buildBinary builds the binary from the repository root into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(dir, "tpe")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/tpe-provisioner")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childEnv is this process's environment without any of the binary's settings, plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TPE_") || strings.HasPrefix(k, "ACS_") || strings.HasPrefix(k, "GRAPH_") || strings.HasPrefix(k, "SERVICEBUS_") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// startRun starts `tpe run` with its output in files under dir, named by attempt.
func startRun(t *testing.T, bin, dir string, attempt int, env map[string]string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("run-%d.log", attempt)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logf.Close() })
	cmd := exec.Command(bin, "run")
	cmd.Env = childEnv(env)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func readLog(dir string, attempt int) string {
	b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run-%d.log", attempt)))
	return string(b)
}

func TestCrashSIGKILLMidRunLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds the binary and kills it mid-run; skipped with -short")
	}
	t.Parallel()
	tmp := t.TempDir()
	sb := sbtest.Start(t, sbtest.Options{Queue: "tpe-notifications", LockDuration: 2 * time.Second, Log: &lockedBuffer{}})
	bin := buildBinary(t, tmp)

	dir := graphtest.Generate(200, 7, graphtest.DefaultMix)
	acsSrv := acstest.New(acstest.Options{})
	acsSrv.SetLatency(40 * time.Millisecond) // so the run is still going when it is killed
	if err := acsSrv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(acsSrv.Close)
	graphSrv := graphtest.New(dir, graphtest.Options{})
	if err := graphSrv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = graphSrv.Close() })

	// Every principal gets a notification; the deleted ones held a grant that must go.
	var ids []string
	for _, u := range dir.Users() {
		ids = append(ids, u.ID)
	}
	for _, u := range dir.DeletedUsers() {
		ids = append(ids, u.ID)
		acsSrv.Seed(acstestUser(u.ID, e2eOurIDs...))
	}
	const forged = 10
	bodies := map[string][]byte{}
	for i, id := range ids {
		bodies[fmt.Sprintf("note-%03d", i)] = userNote(id)
	}
	for i := range forged {
		bodies[fmt.Sprintf("forged-%02d", i)] = userNoteSigned(ids[i*7], "forged-client-state")
	}
	total := len(bodies)
	sendBodies(t, sb, bodies)

	env := map[string]string{
		"ACS_CONNECTION_STRING": acsSrv.ConnectionString(), "GRAPH_ENDPOINT": graphSrv.URL(),
		"TPE_TENANT_ID": graphtest.SampleTenantID, "TPE_CLIENT_IDS": localClientIDs, "TPE_CLIENT_STATE": localClientState,
		"TPE_SCOPE_GROUPS": graphtest.ScopeGroupID, "TPE_CONCURRENCY": "4", "TPE_HTTP_LISTEN": "127.0.0.1:0",
		"TPE_RESYNC_INTERVAL": "0", "TPE_LOG_FORMAT": "json",
		"SERVICEBUS_CONNECTION_STRING": sb.ConnectionString(), "SERVICEBUS_QUEUE": sb.Queue(),
	}
	stats := func() sbtest.Stats {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := sb.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitQueue := func(what string, attempt int, within time.Duration, cond func(sbtest.Stats) bool) sbtest.Stats {
		deadline := time.Now().Add(within)
		for {
			st := stats()
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: queue %+v\nrun %d log:\n%s", what, st, attempt, readLog(tmp, attempt))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	first := startRun(t, bin, tmp, 1, env)
	waitQueue("the first run to make progress", 1, 20*time.Second, func(st sbtest.Stats) bool { return st.Completed >= total/5 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := stats()
	if atKill.Active == 0 {
		t.Fatalf("the first run had received every message when it was killed (%+v): nothing was interrupted", atKill)
	}
	if atKill.Locked == 0 {
		t.Logf("no message was locked at the kill (%+v); the redelivery path is not exercised this time", atKill)
	}

	second := startRun(t, bin, tmp, 2, env)
	final := waitQueue("the queue to drain", 2, 30*time.Second, func(st sbtest.Stats) bool {
		return st.Active == 0 && st.Locked == 0 && st.Completed+st.DeadLettered == total
	})
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("second run after SIGTERM: %v, want exit 0\nlog:\n%s", err, readLog(tmp, 2))
	}

	t.Logf("queue at the kill: %+v; at the end: %+v", atKill, final)
	if final.DeadLettered != forged || final.Completed != total-forged {
		t.Errorf("queue = %+v, want %d completed and exactly the %d forged dead-lettered", final, total-forged, forged)
	}
	if final.Deliveries < total+atKill.Locked {
		t.Errorf("deliveries = %d, want at least %d: the killed run's %d locked messages come back", final.Deliveries, total+atKill.Locked, atKill.Locked)
	}
	checkDeadLetterQueue(t, sb, forged)
	p := worker.Policy{ClientIDs: e2eOurIDs, ScopeGroups: []string{graphtest.ScopeGroupID}}
	checkConverged(t, dir, acsSrv, p, nil)
	if t.Failed() {
		t.Logf("run 1 log (tail):\n%s", tail(readLog(tmp, 1), 4000))
	}
}

// sendBodies sends each body with its key as the message id.
func sendBodies(t *testing.T, sb *sbtest.Server, bodies map[string][]byte) {
	t.Helper()
	sender := localSender(t, localClient(t, sb), sb.Queue())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	batch, err := sender.NewMessageBatch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, body := range bodies {
		if err := batch.AddMessage(&azservicebus.Message{MessageID: &id, Body: body}, nil); err != nil {
			if err := sender.SendMessageBatch(ctx, batch, nil); err != nil {
				t.Fatal(err)
			}
			if batch, err = sender.NewMessageBatch(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if err := batch.AddMessage(&azservicebus.Message{MessageID: &id, Body: body}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sender.SendMessageBatch(ctx, batch, nil); err != nil {
		t.Fatal(err)
	}
}

// checkDeadLetterQueue asserts that the dead-letter queue holds n forged messages, each
// with the untrusted reason and a description.
func checkDeadLetterQueue(t *testing.T, sb *sbtest.Server, n int) {
	t.Helper()
	f := &sbFixture{sb: sb, client: localClient(t, sb)}
	for _, m := range f.deadLettered(t, n) {
		reason, desc := "", ""
		if m.DeadLetterReason != nil {
			reason = *m.DeadLetterReason
		}
		if m.DeadLetterErrorDescription != nil {
			desc = *m.DeadLetterErrorDescription
		}
		if !strings.HasPrefix(m.MessageID, "forged-") || reason != worker.ReasonUntrusted || desc == "" {
			t.Errorf("dead letter %s: reason %q, description %q; want only forged messages, reason %q", m.MessageID, reason, desc, worker.ReasonUntrusted)
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
