package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// These tests run the run and backfill subcommands on the real azservicebus client against
// the local Service Bus endpoint (sbtest), with the ACS and Graph emulators behind them.
// They swap environ, so none of them is parallel.

// sbFixture is the emulators, the queue and a client to it.
type sbFixture struct {
	emu    *emulators
	sb     *sbtest.Server
	client *azservicebus.Client
	sbLog  *lockedBuffer
}

func newSBFixture(t *testing.T, o sbtest.Options) *sbFixture {
	t.Helper()
	f := &sbFixture{emu: startLocalEmulators(t), sbLog: &lockedBuffer{}}
	o.Log = f.sbLog
	o.DuplicateDetection = true // as the deployed queue (deploy/bicep/modules/servicebus.bicep)
	f.sb = sbtest.Start(t, o)
	f.client = localClient(t, f.sb)
	env := emulatorEnv(f.emu)
	env["SERVICEBUS_CONNECTION_STRING"] = f.sb.ConnectionString()
	env["SERVICEBUS_QUEUE"] = f.sb.Queue()
	withEnviron(t, env)
	return f
}

// sendLines sends each non-blank line of the file as one message, "line-N" its id.
func (f *sbFixture) sendLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sender := localSender(t, f.client, f.sb.Queue())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		id := fmt.Sprintf("line-%d", i+1)
		if err := sender.SendMessage(ctx, &azservicebus.Message{MessageID: &id, Body: []byte(line)}, nil); err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
		n++
	}
	return n
}

// localClient opens a client on the local endpoint, closed when the test ends.
func localClient(t *testing.T, sb *sbtest.Server) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(sb.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// localSender opens a sender on queue, closed when the test ends.
func localSender(t *testing.T, c *azservicebus.Client, queue string) *azservicebus.Sender {
	t.Helper()
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// stats reads the queue's counts.
func (f *sbFixture) stats(t *testing.T) sbtest.Stats { return queueStats(t, f.sb) }

// queueStats reads the local queue's counts, failing the test when it cannot.
func queueStats(t *testing.T, sb *sbtest.Server) sbtest.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := sb.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// runOutput is what a finished run printed.
type runOutput struct{ stdout, stderr string }

// runUntilDrained runs `run` on the queue until every message is settled (completed plus
// dead-lettered equals total), calling during while it still runs, then stops it as the
// first SIGTERM would.
func (f *sbFixture) runUntilDrained(t *testing.T, total int, during func(stderr *lockedBuffer)) runOutput {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- runRun(ctx, nil, &stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := f.stats(t)
		if st.Active == 0 && st.Locked == 0 && st.Completed+st.DeadLettered >= total {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run stopped early: %v\nstderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained: %+v\nstderr:\n%s\nendpoint:\n%s", st, stderr.String(), f.sbLog)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if during != nil {
		during(&stderr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v after the first signal, want a clean stop\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop within 20 s of the signal")
	}
	return runOutput{stdout.String(), stderr.String()}
}

// opsAddr finds the ops server's address in the JSON log.
func opsAddr(t *testing.T, logs string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ops server listening" {
			return rec.Addr
		}
	}
	t.Fatalf("no ops server address in the log:\n%s", logs)
	return ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// deadLettered receives n messages from the dead-letter sub-queue.
func (f *sbFixture) deadLettered(t *testing.T, n int) []*azservicebus.ReceivedMessage {
	t.Helper()
	dlq, err := f.client.NewReceiverForQueue(f.sb.Queue(), &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*azservicebus.ReceivedMessage
	for len(got) < n {
		msgs, err := dlq.ReceiveMessages(ctx, n-len(got), nil)
		if err != nil {
			t.Fatalf("receive from the dead-letter queue after %d of %d: %v", len(got), n, err)
		}
		got = append(got, msgs...)
	}
	return got
}

func TestServiceBusRunSettlesTheSampleEvents(t *testing.T) {
	f := newSBFixture(t, sbtest.Options{Queue: "tpe-notifications", LockDuration: 5 * time.Second})
	total := f.sendLines(t, filepath.Join(repoRoot(t), "deploy/local/sample-events.jsonl"))

	out := f.runUntilDrained(t, total, func(stderr *lockedBuffer) {
		base := "http://" + opsAddr(t, stderr.String())
		if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz = %d %q while the queue is connected, want 200", code, body)
		}
		if _, body := httpGet(t, base+"/metrics"); !strings.Contains(body, "tpe_acs_requests_total") {
			t.Error("/metrics lacks tpe_acs_requests_total")
		}
	})

	if want := "messages: completed=10 dead_lettered=2 abandoned=0"; !strings.HasPrefix(out.stdout, want) {
		t.Errorf("summary = %q, want it to start with %q", out.stdout, want)
	}
	if st := f.stats(t); st.Completed != 10 || st.DeadLettered != 2 || st.Deliveries != total {
		t.Errorf("queue = %+v, want 10 completed, 2 dead-lettered, %d deliveries (none redelivered)", st, total)
	}
	checkSampleOutcome(t, f.emu.acs.Assignments())

	reasons := map[string]string{}
	for _, m := range f.deadLettered(t, 2) {
		if m.DeadLetterReason == nil || m.DeadLetterErrorDescription == nil || *m.DeadLetterErrorDescription == "" {
			t.Errorf("%s dead-lettered without a reason and description", m.MessageID)
			continue
		}
		reasons[m.MessageID] = *m.DeadLetterReason
	}
	if want := map[string]string{"line-11": worker.ReasonUntrusted, "line-12": worker.ReasonMalformed}; fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("dead-letter queue = %v, want %v", reasons, want)
	}
	assertNoSecrets(t, out.stderr, f.emu.acs.AccessKey(), sbKey(f.sb.ConnectionString()))
}

// sbKey returns the SharedAccessKey of a connection string.
func sbKey(cs string) string {
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(k, "SharedAccessKey") {
			return v
		}
	}
	return ""
}

func TestServiceBusBackfillEnqueueThenRunConvergesTheScope(t *testing.T) {
	const emily, bianca = "f03198c4-5f95-4f9c-bef1-2c37ca6cd66c", "2a2d67ff-f459-4731-9119-cf3b52c7c179"
	f := newSBFixture(t, sbtest.Options{Queue: "tpe-notifications", LockDuration: 5 * time.Second})
	// Stale grants the backfill must find: a disabled scope member and a deleted user.
	for _, id := range []string{emily, bianca} {
		f.emu.acs.Seed(acstestUser(id, e2eOurIDs...))
	}

	var stdout, stderr lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runBackfill(ctx, []string{"--enqueue", "--output", "json"}, &stdout, &stderr); err != nil {
		t.Fatalf("backfill --enqueue: %v\nstderr:\n%s", err, stderr.String())
	}
	totals := backfillTotals(t, stdout.String())
	enqueued := 0
	for _, n := range totals.Applied {
		enqueued += n
	}
	if !totals.Enqueued || totals.Applied[worker.ActionRevoke] != 2 || totals.Applied[worker.ActionGrant] == 0 {
		t.Fatalf("totals = %+v, want the grants and the 2 revokes enqueued", totals)
	}
	if c := f.emu.acs.Counts(); c["PUT"]+c["DELETE"] != 0 {
		t.Fatalf("backfill --enqueue wrote to ACS (%v): the replicas consuming the queue should", c)
	}
	if st := f.stats(t); st.Active != enqueued {
		t.Fatalf("queue holds %d messages, want the %d planned changes", st.Active, enqueued)
	}

	f.runUntilDrained(t, enqueued, nil)
	if st := f.stats(t); st.Completed != enqueued || st.DeadLettered != 0 {
		t.Errorf("queue = %+v, want all %d commands completed", st, enqueued)
	}
	p := worker.Policy{ClientIDs: e2eOurIDs, ScopeGroups: []string{localScopeGroup}}
	checkConverged(t, f.emu.dir, f.emu.acs, p, nil)
}

func acstestUser(oid string, clientIDs ...string) acstest.Assignment {
	return acstest.Assignment{ObjectID: oid, TenantID: graphtest.SampleTenantID, PrincipalType: "user", ClientIDs: clientIDs}
}

// backfillTotals reads the totals line a JSON plan ends with.
func backfillTotals(t *testing.T, out string) backfill.PlanTotals {
	t.Helper()
	var last struct {
		Totals *backfill.PlanTotals `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &last); err != nil || last.Totals == nil {
		t.Fatalf("plan output does not end with totals (%v):\n%s", err, out)
	}
	return *last.Totals
}

// A group notification without members@delta for a large group is handed back to the queue
// as one reconcile command per member, which `run` then works like any other message: the
// notification completes at once and every member converges.
func TestServiceBusRunFansOutALargeGroup(t *testing.T) {
	f := newSBFixture(t, sbtest.Options{Queue: "tpe-notifications", LockDuration: 5 * time.Second})
	for i := range 60 {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		if err := f.emu.dir.AddUser(graphtest.UserRecord{ID: id, UserPrincipalName: fmt.Sprintf("agent%d@contoso.example", i+1),
			AccountEnabled: true, AssignedPlans: []graphtest.Plan{{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Enabled"}}}); err != nil {
			t.Fatal(err)
		}
		if err := f.emu.dir.AddMember(localScopeGroup, id); err != nil {
			t.Fatal(err)
		}
	}
	members := len(f.emu.dir.TransitiveUserMembers(localScopeGroup))
	sender := localSender(t, f.client, f.sb.Queue())
	id := "group-note-1"
	if err := sender.SendMessage(context.Background(), &azservicebus.Message{MessageID: &id, Body: groupNote(localScopeGroup, nil, nil)}, nil); err != nil {
		t.Fatal(err)
	}

	out := f.runUntilDrained(t, 1+members, nil)
	if st := f.stats(t); st.Completed != 1+members || st.DeadLettered != 0 {
		t.Errorf("queue = %+v, want the notification and one command per member (%d) completed", st, members)
	}
	if !strings.Contains(out.stderr, "group members handed to the queue") || !strings.Contains(out.stderr, fmt.Sprintf(`"members":%d`, members)) {
		t.Errorf("the log does not say the %d members were handed to the queue:\n%s", members, out.stderr)
	}
	p := worker.Policy{ClientIDs: e2eOurIDs, ScopeGroups: []string{localScopeGroup}}
	checkConverged(t, f.emu.dir, f.emu.acs, p, nil)
}
