package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
)

// A small multi-replica chaos run: three workers share the queue, each with its own
// clients, over the pairs traffic with jittered calls. Whether the queue alone left a
// principal wrong is what the run measures, so the exit code is not asserted here; the
// accounting must hold either way.
func TestChaosRunsReplicasOnOneQueue(t *testing.T) {
	var out, errOut bytes.Buffer
	code := realMain(context.Background(), []string{"chaos", "--replicas", "3", "--pairs", "100ms", "--copies", "1",
		"--max-delay", "50ms", "--jitter", "5ms", "--graph-latency", "5ms", "--acs-latency", "5ms",
		"--messages", "300", "--fault-rate", "0.05", "--restarts", "1", "--seed", "4"}, &out, &errOut)
	if code != 0 && code != 1 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, &out, &errOut)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s\n%s", err, &out, &errOut)
	}
	requireFields(t, got, "wrong_before_resync", "wrong", "stale_writes", "stale_writes_repaired",
		"wrong_before_resync_per_1000_changes", "wrong_per_1000_changes", "replicas", "replica_completed")
	if num(got, "replicas") != 3 || num(got, "mutations") != 300 {
		t.Errorf("replicas %v mutations %v, want 3 and 300 (150 users changed twice)", got["replicas"], got["mutations"])
	}
	// One copy of each change, plus nothing else: no initial notifications, no fan-out.
	if num(got, "messages") != 300 || num(got, "lost_messages") != 0 ||
		num(got, "completed")+num(got, "dead_lettered") != 300 {
		t.Errorf("messages %v completed %v dead-lettered %v lost %v, want 300 settled and none lost",
			got["messages"], got["completed"], got["dead_lettered"], got["lost_messages"])
	}
	per, _ := got["replica_completed"].([]any)
	sum := 0.0
	for i, n := range per {
		if f, _ := n.(float64); f == 0 {
			t.Errorf("replica %d completed no message: %v", i, per)
		} else {
			sum += f
		}
	}
	if len(per) != 3 || sum != num(got, "completed") {
		t.Errorf("replica_completed = %v, want three counts summing to completed %v", per, got["completed"])
	}
	if num(got, "stale_writes_repaired") > num(got, "stale_writes") {
		t.Errorf("more stale writes repaired than seen: %v", got)
	}
	if code == 1 && num(got, "wrong") == 0 {
		t.Errorf("exit 1 with nothing wrong: %s", &errOut)
	}
}

// Replicas share one queue: closing one receiver gives back the messages it holds and
// leaves the other's locks alone, as with two Service Bus receivers.
func TestReceiverCloseGivesBackOnlyItsOwnMessages(t *testing.T) {
	ctx := context.Background()
	q := newQueue(0, nil, 0)
	q.send([]byte("a"), 0)
	q.send([]byte("b"), 0)
	r0, r1 := q.receiver(0), q.receiver(1)
	got0, err := r0.Receive(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got1, err := r1.Receive(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r0.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r1.Complete(ctx, got1[0]); err != nil {
		t.Errorf("the other replica's lock was released by this one's Close: %v", err)
	}
	again, err := r1.Receive(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0].Body) != string(got0[0].Body) || again[0].DeliveryCount != 2 {
		t.Errorf("redelivered %q (delivery %d), want %q again as its second delivery", again[0].Body,
			again[0].DeliveryCount, got0[0].Body)
	}
	if s := q.stats(); s.byOwner[1] != 1 || s.byOwner[0] != 0 {
		t.Errorf("completed by receiver = %v, want one by replica 1", s.byOwner)
	}
}

// Every receiver waiting on an empty queue learns of its end, not just one of them.
func TestEveryReceiverSeesTheEnd(t *testing.T) {
	q := newQueue(0, nil, 0)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := q.receiver(i).Receive(context.Background(), 1)
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	q.seal()
	for range 3 {
		select {
		case err := <-errs:
			if err == nil || !strings.Contains(err.Error(), "EOF") {
				t.Errorf("Receive = %v, want io.EOF", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a receiver still waits after the queue was sealed and drained")
		}
	}
}

// The stale-write watch judges each successful write on the directory at the moment it
// lands: a grant to a user disabled meanwhile is stale, the revoke after it repairs it, and
// failed writes and reads are not judged.
func TestStaleWatchJudgesWritesAsTheyLand(t *testing.T) {
	const id = "00000000-0000-4000-8000-0000000000aa"
	dir := graphtest.NewDirectory(graphtest.SampleTenantID)
	teams := []graphtest.Plan{{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Enabled"}}
	if err := dir.AddUser(graphtest.UserRecord{ID: id, UserPrincipalName: "a@contoso.example", AccountEnabled: true,
		AssignedPlans: teams}); err != nil {
		t.Fatal(err)
	}
	if err := dir.AddGroup(graphtest.ScopeGroupID, "Scope", id); err != nil {
		t.Fatal(err)
	}
	p := benchPolicy()
	srv := acstest.New(acstest.Options{})
	w := newStaleWatch(dir, p)
	w.srv = srv
	// The emulator is replaced by a handler that applies the write to the store as told.
	var apply func()
	status := http.StatusOK
	h := w.wrap(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		if apply != nil {
			apply()
		}
		rw.WriteHeader(status)
	}))
	path := "/access/teamsExtension/tenants/" + graphtest.SampleTenantID + "/assignments/" + id
	grant := func() {
		srv.Seed(seedFor(dir.TenantID(), id, oracle.Verdict(dir, p, id), false))
	}
	send := func(method string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}

	apply = grant
	send(http.MethodPut) // right: the user is eligible
	if s, r := w.counts(); s != 0 || r != 0 {
		t.Fatalf("a right grant counted: stale %d repaired %d", s, r)
	}
	_ = dir.SetAccountEnabled(id, false)
	send(http.MethodGet)
	status = http.StatusInternalServerError
	send(http.MethodPut)
	if s, _ := w.counts(); s != 0 {
		t.Fatalf("a read or a failed write counted as stale: %d", s)
	}
	status = http.StatusOK
	send(http.MethodPut) // the grant still held lands on a disabled user: stale
	if s, r := w.counts(); s != 1 || r != 0 {
		t.Fatalf("after a stale grant: stale %d repaired %d, want 1 and 0", s, r)
	}
	apply = func() { w.srv = acstest.New(acstest.Options{}) } // the store without the assignment
	send(http.MethodDelete)
	if s, r := w.counts(); s != 1 || r != 1 {
		t.Errorf("after the revoke: stale %d repaired %d, want 1 and 1", s, r)
	}
}
