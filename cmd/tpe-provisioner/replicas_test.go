package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/subscriptions"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Several replicas of `run` on one queue: per-principal serialization holds only inside a
// process and an ACS PUT is last-writer-wins, so two replicas working on two notifications
// of one user can let a write decided on the older directory land last. Three real
// processes consume one queue of the local Service Bus endpoint while the directory
// changes under them: every user starts converged and is changed twice, 0–150 ms apart,
// each change's notification arriving 0–50 ms later, and every call to either emulator
// takes 20 ms plus a random extra (mean 30 ms). No resync runs: the notifications alone
// must leave every principal as the policy wants.
func TestReplicasConvergeWithoutAResync(t *testing.T) {
	if testing.Short() {
		t.Skip("replicas test: builds the binary and runs three of it; skipped with -short")
	}
	t.Parallel()
	const (
		replicas = 3
		users    = 800
		gap      = 150 * time.Millisecond
		delay    = 50 * time.Millisecond
	)
	tmp := t.TempDir()
	sb := sbtest.Start(t, sbtest.Options{Queue: "tpe-notifications", Log: &lockedBuffer{}})
	bin := buildBinary(t, tmp)

	dir := graphtest.Generate(users+users/10, 11, graphtest.DefaultMix)
	p := worker.Policy{ClientIDs: e2eOurIDs, ScopeGroups: []string{graphtest.ScopeGroupID}}
	acsSrv := acstest.New(acstest.Options{})
	acsSrv.SetLatency(20 * time.Millisecond)
	seedConvergedACS(acsSrv, dir, p)
	if wrong := wrongPrincipals(dir, acsSrv, p); len(wrong) != 0 {
		t.Fatalf("the seed is not converged: %v", wrong)
	}
	acsURL := serveJittered(t, acsSrv.Handler(), 30*time.Millisecond, 1)
	graphSrv := graphtest.New(dir, graphtest.Options{Latency: 20 * time.Millisecond})
	graphURL := serveJittered(t, graphSrv.Handler(), 30*time.Millisecond, 2)

	env := map[string]string{
		"ACS_CONNECTION_STRING": "endpoint=" + acsURL + "/;accesskey=" + acsSrv.AccessKey(), "GRAPH_ENDPOINT": graphURL,
		"TPE_TENANT_ID": graphtest.SampleTenantID, "TPE_CLIENT_IDS": localClientIDs, "TPE_CLIENT_STATE": localClientState,
		"TPE_SCOPE_GROUPS": graphtest.ScopeGroupID, "TPE_CONCURRENCY": "64", "TPE_HTTP_LISTEN": "127.0.0.1:0",
		"TPE_RESYNC_INTERVAL": "0", "TPE_LOG_FORMAT": "json",
		"SERVICEBUS_CONNECTION_STRING": sb.ConnectionString(), "SERVICEBUS_QUEUE": sb.Queue(),
	}
	runs := make([]*execRun, replicas)
	for i := range runs {
		runs[i] = &execRun{cmd: startRun(t, bin, tmp, i+1, env), attempt: i + 1}
	}

	sender := localSender(t, localClient(t, sb), sb.Queue())
	ch := &changer{dir: dir, sender: sender, rng: rand.New(rand.NewPCG(11, 0x7265706c)), delay: delay}
	changes := ch.pairs(t, users, gap)
	total := ch.wait(t)

	deadline := time.Now().Add(40 * time.Second)
	var st sbtest.Stats
	for {
		st = queueStats(t, sb)
		if st.Active == 0 && st.Locked == 0 && st.Completed+st.DeadLettered == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the queue to drain: %+v of %d\nrun 1 log:\n%s", st, total, tail(readLog(tmp, 1), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range runs {
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runs {
		if err := r.cmd.Wait(); err != nil {
			t.Errorf("run %d after SIGTERM: %v, want exit 0\nlog:\n%s", r.attempt, err, tail(readLog(tmp, r.attempt), 4000))
		}
	}
	if st.DeadLettered != 0 {
		t.Errorf("%d of %d messages dead-lettered", st.DeadLettered, total)
	}
	wrong := wrongPrincipals(dir, acsSrv, p)
	t.Logf("%d changes, %d messages, %d replicas: %d principals wrong (%.1f per 1,000 changes)",
		changes, total, replicas, len(wrong), float64(len(wrong))*1000/float64(max(changes, 1)))
	for i, w := range wrong {
		if i == 10 {
			t.Errorf("... and %d more", len(wrong)-10)
			break
		}
		t.Errorf("not converged without a resync: %s", w)
	}
}

// execRun is one started `run` and the number of its log file.
type execRun struct {
	cmd     *exec.Cmd
	attempt int
}

// serveJittered serves h on a loopback port, each request delayed by a random extra before
// it reaches h (exponential, with the given mean, cut at ten times it), and returns the
// base URL.
func serveJittered(t *testing.T, h http.Handler, mean time.Duration, seed uint64) string {
	t.Helper()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0x6a6974))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := min(time.Duration(rng.ExpFloat64()*float64(mean)), 10*mean)
		mu.Unlock()
		select {
		case <-time.After(d):
			h.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// seedConvergedACS gives every principal the assignment the policy wants for it.
func seedConvergedACS(srv *acstest.Server, dir *graphtest.Directory, p worker.Policy) {
	for _, id := range oracle.Principals(dir) {
		switch oracle.Verdict(dir, p, id).Type {
		case worker.PrincipalUser:
			srv.Seed(acstestUser(id, p.ClientIDs...))
		case worker.PrincipalResourceAccount:
			srv.Seed(acstest.Assignment{ObjectID: id, TenantID: dir.TenantID(), PrincipalType: "teamsResourceAccount"})
		}
	}
}

// wrongPrincipals lists each principal whose assignment the policy would still change,
// with its verdict and what ACS holds.
func wrongPrincipals(dir *graphtest.Directory, srv *acstest.Server, p worker.Policy) []string {
	held := oracle.Held(srv, dir.TenantID())
	var wrong []string
	for _, id := range oracle.All(dir, held) {
		v := oracle.Verdict(dir, p, id)
		if plan := worker.Decide(v, worker.CommandReconcile, held[id], p); plan.Put != nil || plan.Delete {
			wrong = append(wrong, fmt.Sprintf("%s (verdict %q, %s): ACS holds %+v, the policy plans %s",
				id, v.Type, v.Reason, held[id], plan.Action))
		}
	}
	return wrong
}

// changer changes users of the directory and sends the notification of each change to the
// queue after a random delay, one copy each.
type changer struct {
	dir    *graphtest.Directory
	sender *azservicebus.Sender
	rng    *rand.Rand
	delay  time.Duration

	sends sync.WaitGroup
	mu    sync.Mutex
	sent  int
	errs  []error
}

// pairs changes n live users twice each, the second change 0..gap after the first, a pair
// starting every 4–8 ms (the replicas keep up, so both notifications of a user are often in flight at once), and returns the changes made.
func (c *changer) pairs(t *testing.T, n int, gap time.Duration) int {
	t.Helper()
	type event struct {
		at     time.Duration
		id     string
		second bool
	}
	live := c.dir.Users()
	if len(live) < n {
		t.Fatalf("the directory has %d live users, want %d", len(live), n)
	}
	var events []event
	var at time.Duration
	for _, u := range live[:n] {
		events = append(events, event{at: at, id: u.ID},
			event{at: at + time.Duration(c.rng.Int64N(int64(gap)+1)), id: u.ID, second: true})
		at += time.Duration(4+c.rng.IntN(5)) * time.Millisecond
	}
	slices.SortStableFunc(events, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	start, changes := time.Now(), 0
	for _, e := range events {
		time.Sleep(time.Until(start.Add(e.at)))
		if _, ok := c.dir.LookupUser(e.id); !ok {
			continue
		}
		c.change(e.id, e.second)
		changes++
	}
	return changes
}

// change makes one random change to the user (a deletion only when mayDelete): the account
// switched on or off, the Teams plan removed, suspended or restored, or the user added to
// or removed from the scope group.
func (c *changer) change(id string, mayDelete bool) {
	u, _ := c.dir.LookupUser(id)
	teams := graphtest.Plan{ServicePlanID: graphtest.TeamsPlanID, Service: "TeamspaceAPI", CapabilityStatus: "Enabled"}
	switch c.rng.IntN(4) {
	case 0:
		_ = c.dir.SetAccountEnabled(id, !u.AccountEnabled)
	case 1:
		plans := [][]graphtest.Plan{nil, {teams}, {{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Suspended"}}}
		_ = c.dir.SetPlans(id, plans[c.rng.IntN(len(plans))]...)
	case 2:
		if mayDelete && c.rng.IntN(3) == 0 {
			_ = c.dir.DeleteUser(id)
			c.send(deletedEvent(id))
			return
		}
		_ = c.dir.SetPlans(id, teams)
	default:
		g, _ := c.dir.Group(graphtest.ScopeGroupID)
		if slices.Contains(g.Members, id) {
			_ = c.dir.RemoveMember(graphtest.ScopeGroupID, id)
			c.send(groupNote(graphtest.ScopeGroupID, nil, []string{id}))
		} else {
			_ = c.dir.AddMember(graphtest.ScopeGroupID, id)
			c.send(groupNote(graphtest.ScopeGroupID, []string{id}, nil))
		}
		return
	}
	c.send(userNote(id))
}

// send sends body after a random delay, in the background.
func (c *changer) send(body []byte) {
	c.mu.Lock()
	c.sent++
	msgID := fmt.Sprintf("change-%05d", c.sent)
	c.mu.Unlock()
	c.sends.Add(1)
	time.AfterFunc(time.Duration(c.rng.Int64N(int64(c.delay)+1)), func() {
		defer c.sends.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.sender.SendMessage(ctx, &azservicebus.Message{MessageID: &msgID, Body: body}, nil); err != nil {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}
	})
}

// wait waits for every send and returns how many messages were sent.
func (c *changer) wait(t *testing.T) int {
	t.Helper()
	c.sends.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("%d sends failed, the first: %v", len(c.errs), c.errs[0])
	}
	return c.sent
}

// With N replicas the subscriptions are kept by one scheduled `subscribe`, so `run` with
// TPE_RENEW_SUBSCRIPTIONS=false creates and renews none (while one with the default
// does), and still answers lifecycle events through the keeper.
func TestRunLeavesSubscriptionsToTheScheduledJobWhenRenewalIsOff(t *testing.T) {
	t.Parallel()
	for _, renew := range []bool{true, false} {
		t.Run(fmt.Sprintf("renew=%v", renew), func(t *testing.T) {
			t.Parallel()
			dir := graphtest.Generate(10, 1, graphtest.DefaultMix)
			gsrv := graphtest.NewServer(t, dir)
			asrv := acstest.NewServer(t)
			ctx, bg, svc := startTestService(t, map[string]string{
				"ACS_CONNECTION_STRING": asrv.ConnectionString(), "GRAPH_ENDPOINT": gsrv.URL(),
				"TPE_TENANT_ID": dir.TenantID(), "TPE_CLIENT_IDS": localClientIDs, "TPE_SCOPE_GROUPS": localScopeGroup,
				"TPE_CLIENT_STATE": localClientState, "TPE_RENEW_SUBSCRIPTIONS": fmt.Sprint(renew),
				"TPE_EVENT_GRID": "azuresubscriptionid=11111111-2222-3333-4444-555555555555&resourcegroup=rg&partnertopic=graph&location=westeurope",
			})
			h, err := startKeeper(ctx, bg, svc, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := h.(*subscriptions.Keeper); !ok {
				t.Errorf("lifecycle handler is %T, want the keeper (it reauthorizes and recreates)", h)
			}
			want := 0
			if renew {
				want = 2 // users and the scope group
			}
			deadline := time.Now().Add(2 * time.Second)
			for len(gsrv.Subscriptions()) != want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !renew {
				time.Sleep(200 * time.Millisecond) // give a wrongly started keeper the time to subscribe
			}
			if got := len(gsrv.Subscriptions()); got != want {
				t.Errorf("Graph holds %d subscriptions, want %d", got, want)
			}
		})
	}
}

// Replicas whose scheduled resync is a job run with TPE_RESYNC_INTERVAL 0, but a lifecycle
// event saying notifications were lost must still start a resync at once, in the one replica
// it reaches, rather than wait for the job's next run.
func TestRunWithoutAScheduledResyncStillResyncsOnALifecycleEvent(t *testing.T) {
	t.Parallel()
	dir, err := graphtest.LoadDirectoryFile(filepath.Join("..", "..", localDirectory))
	if err != nil {
		t.Fatal(err)
	}
	gsrv := graphtest.NewServer(t, dir)
	asrv := acstest.NewServer(t)
	ctx, bg, svc := startTestService(t, map[string]string{
		"ACS_CONNECTION_STRING": asrv.ConnectionString(), "GRAPH_ENDPOINT": gsrv.URL(),
		"TPE_TENANT_ID": dir.TenantID(), "TPE_CLIENT_IDS": localClientIDs, "TPE_SCOPE_GROUPS": localScopeGroup,
		"TPE_RESYNC_INTERVAL": "0",
	})
	h, err := startKeeper(ctx, bg, svc, startResync(ctx, bg, svc, false))
	if err != nil {
		t.Fatal(err)
	}
	const adele = "e2a214e8-bbe9-4675-9d52-490575ffc53d" // licensed, in scope, no assignment yet
	time.Sleep(100 * time.Millisecond)
	if acsHoldsAssignment(asrv, adele) {
		t.Fatal("a resync ran with none scheduled and no event")
	}
	if err := h.HandleLifecycle(ctx, worker.LifecycleEvent{SubscriptionID: "any", Event: "missed"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !acsHoldsAssignment(asrv, adele) {
		if time.Now().After(deadline) {
			t.Fatal("the missed event started no resync: an eligible user is still without access")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTestService builds run's service from env, and a context for its background work that
// the test's cleanup cancels, waiting for that work (the WaitGroup) to end.
func startTestService(t *testing.T, env map[string]string) (context.Context, *sync.WaitGroup, *service) {
	t.Helper()
	c, err := loadConfig(t, env)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := newService(c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bg := &sync.WaitGroup{}
	t.Cleanup(func() {
		cancel()
		bg.Wait()
	})
	return ctx, bg, svc
}
