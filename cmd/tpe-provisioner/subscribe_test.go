package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/subscriptions"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// subsTestClock is a settable clock shared by the Graph emulator and the keeper.
type subsTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *subsTestClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *subsTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// The subscription life cycle against the Graph emulator, through the real graph client:
// create → renew before expiry → reauthorize on the lifecycle event → recreate after
// removal → a missed event runs a scope reconcile that grants what the directory says.
func TestSubscriptionLifecycleAgainstGraphEmulator(t *testing.T) {
	clock := &subsTestClock{now: time.Now().UTC()}
	dir, err := graphtest.LoadDirectoryFile(filepath.Join("..", "..", localDirectory))
	if err != nil {
		t.Fatal(err)
	}
	gsrv := graphtest.NewServer(t, dir, func(o *graphtest.Options) { o.Clock = clock.Now })
	asrv := acstest.NewServer(t)
	c, err := loadConfig(t, map[string]string{
		"ACS_CONNECTION_STRING": asrv.ConnectionString(), "GRAPH_ENDPOINT": gsrv.URL(),
		"TPE_TENANT_ID": dir.TenantID(), "TPE_CLIENT_IDS": localClientIDs, "TPE_SCOPE_GROUPS": localScopeGroup,
		"TPE_CLIENT_STATE": localClientState,
		"TPE_EVENT_GRID":   "azuresubscriptionid=11111111-2222-3333-4444-555555555555&resourcegroup=rg&partnertopic=graph&location=westeurope",
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := newService(c, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	resyncs := make(chan struct{}, 8)
	target, _ := notificationURL(c)
	k, err := subscriptions.NewKeeper(adapt.Subscriptions{Client: svc.graph}, subscriptions.KeeperOptions{
		Resources: subscriptions.SubscriptionResources(c.ScopeGroups), NotificationURL: target,
		ClientState: c.ClientState, Logger: log, Now: clock.Now,
		Resync: func() { resyncs <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Create: one subscription per resource, however often it runs.
	for range 2 {
		if _, err := k.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	subs := gsrv.Subscriptions()
	if len(subs) != 2 {
		t.Fatalf("emulator holds %d subscriptions, want 2 (users and the scope group)", len(subs))
	}
	for _, s := range subs {
		if s.ClientState != localClientState || s.NotificationURL != target || s.LifecycleNotificationURL != target {
			t.Errorf("subscription %s: client state, notification or lifecycle URL not as configured: %+v", s.Resource, s)
		}
	}
	firstExpiry := subs[0].ExpirationDateTime

	// Renew: with less than a quarter of the lifetime left, Ensure pushes the expiry out.
	clock.Advance(subscriptions.DefaultSubscriptionLifetime * 8 / 10)
	if _, err := k.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range gsrv.Subscriptions() {
		if !s.ExpirationDateTime.After(firstExpiry) {
			t.Errorf("subscription %s not renewed: expires %s, was %s", s.Resource, s.ExpirationDateTime, firstExpiry)
		}
	}

	// Reauthorize on the lifecycle event, then resync (Graph may have paused delivery).
	users := subByResource(t, gsrv, "users")
	if err := k.HandleLifecycle(ctx, worker.LifecycleEvent{SubscriptionID: users.ID, Event: "reauthorizationRequired"}); err != nil {
		t.Fatal(err)
	}
	if got := subByResource(t, gsrv, "users").Reauthorized; got != 1 {
		t.Errorf("reauthorize calls = %d, want 1", got)
	}
	wantResync(t, resyncs, "reauthorizationRequired")

	// Recreate after removal.
	if err := svc.graph.DeleteSubscription(ctx, users.ID); err != nil {
		t.Fatal(err)
	}
	if err := k.HandleLifecycle(ctx, worker.LifecycleEvent{SubscriptionID: users.ID, Event: "subscriptionRemoved"}); err != nil {
		t.Fatal(err)
	}
	if again := subByResource(t, gsrv, "users"); again.ID == users.ID {
		t.Errorf("users subscription not recreated (same id %s)", again.ID)
	}
	wantResync(t, resyncs, "subscriptionRemoved")

	// A missed event triggers a scope reconcile: wire the trigger to a real resync and check
	// it grants what the directory says, through both emulators.
	rs := backfill.NewResyncer(0, svc.backfillOptions())
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); rs.Run(rctx) }()
	if err := k.HandleLifecycle(ctx, worker.LifecycleEvent{SubscriptionID: subByResource(t, gsrv, "users").ID, Event: "missed"}); err != nil {
		t.Fatal(err)
	}
	<-resyncs
	rs.Trigger()
	deadline := time.Now().Add(10 * time.Second)
	for !acsHoldsAssignment(asrv, "e2a214e8-bbe9-4675-9d52-490575ffc53d") { // adele.vance: licensed, in scope
		if time.Now().After(deadline) {
			t.Fatal("the resync after a missed event did not grant an eligible user")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if acsHoldsAssignment(asrv, "c9ce5ddc-2a52-483e-96df-d21e9d1f5c01") { // megan.bowen: licensed, out of scope
		t.Error("the resync granted a user outside the scope groups")
	}
	cancel()
	<-done
}

func subByResource(t *testing.T, srv *graphtest.Server, resource string) graphtest.SubscriptionRecord {
	t.Helper()
	for _, s := range srv.Subscriptions() {
		if s.Resource == resource {
			return s
		}
	}
	t.Fatalf("no %s subscription in the emulator", resource)
	return graphtest.SubscriptionRecord{}
}

func wantResync(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatalf("no resync triggered after %s", after)
	}
}

func acsHoldsAssignment(srv *acstest.Server, objectID string) bool {
	for _, a := range srv.Assignments() {
		if a.ObjectID == objectID {
			return true
		}
	}
	return false
}
