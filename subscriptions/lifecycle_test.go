package subscriptions

import (
	"slices"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func TestRunAndReauthorizationRaceRenewOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		lifecycle   bool // the lifecycle handler starts the renewal (reauthorize refused → renew)
		wantHow     string
		wantReauths int
	}{
		{"run renews first, the lifecycle event joins", false, "joined_renewal", 0},
		{"the lifecycle event renews first, run joins", true, "renewed", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSubsFixture(t, func(o *KeeperOptions) { o.Resources = []string{"users"} })
			f.run(t)
			users := f.only(t, "users")
			f.api.gateRenew(users.ID)
			t.Cleanup(f.api.releaseGate) // lets Run finish if the test fails early
			f.api.failNext("Reauthorize", &subsFakeErr{400, "cannot reauthorize"})

			lifecycleErr := make(chan error, 1)
			handle := func() {
				go func() {
					lifecycleErr <- f.k.HandleLifecycle(t.Context(), worker.LifecycleEvent{SubscriptionID: users.ID, Event: "reauthorizationRequired"})
				}()
			}
			if tt.lifecycle {
				f.advance(t, subsRenewAt-time.Second) // not due yet
				handle()
				f.api.awaitGated(t)
				f.clock.Advance(time.Second) // due: Run wakes and finds the renewal in flight
			} else {
				f.clock.Advance(subsRenewAt)
				f.api.awaitGated(t)
				handle()
			}
			clk.WaitUntil(t, "the second caller to join", func() bool {
				f.k.mu.Lock()
				defer f.k.mu.Unlock()
				return f.k.flights[users.ID] != nil && f.k.flights[users.ID].waiters == 1
			})
			f.api.releaseGate()
			if err := <-lifecycleErr; err != nil {
				t.Fatalf("HandleLifecycle: %v", err)
			}
			f.idle(t)

			if got := f.api.renewsOf(users.ID); got != 1 {
				t.Errorf("renewed %d times, want exactly 1", got)
			}
			if got := f.api.count("Reauthorize"); got != tt.wantReauths {
				t.Errorf("Reauthorize called %d times, want %d", got, tt.wantReauths)
			}
			if got := f.resyncs.Load(); got != 1 {
				t.Errorf("Resync called %d times, want 1", got)
			}
			audits := f.log.Audits(t)
			if len(audits) == 0 || audits[0][logkey.Action] != auditSubscriptionReauthorize || audits[0][logkey.How] != tt.wantHow {
				t.Errorf("first audit record %v, want %s how=%s", audits, auditSubscriptionReauthorize, tt.wantHow)
			}
		})
	}
}

func TestHandleLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		event       string
		reauthErr   error // Graph's answer to reauthorize
		removed     bool  // Graph removed the subscription before the event
		foreign     bool  // the event names a subscription that is not ours
		wantErr     bool
		wantReauths int
		wantRenews  int
		wantNewID   bool
		wantResyncs int32
		wantAudit   []string
	}{
		{name: "reauthorization required", event: "reauthorizationRequired",
			wantReauths: 1, wantResyncs: 1, wantAudit: []string{auditSubscriptionReauthorize, auditResyncTriggered}},
		{name: "reauthorization refused falls back to renew", event: "reauthorizationRequired",
			reauthErr:   &subsFakeErr{400, "bad request"},
			wantReauths: 1, wantRenews: 1, wantResyncs: 1, wantAudit: []string{auditSubscriptionReauthorize, auditResyncTriggered}},
		{name: "reauthorization of a vanished subscription recreates it", event: "reauthorizationRequired", removed: true,
			wantReauths: 1, wantNewID: true, wantResyncs: 1, wantAudit: []string{auditSubscriptionRecreate, auditResyncTriggered}},
		{name: "reauthorization throttled is retried later", event: "reauthorizationRequired",
			reauthErr: &subsFakeErr{429, "throttled"}, wantErr: true, wantReauths: 1},
		{name: "subscription removed is recreated", event: "subscriptionRemoved", removed: true,
			wantNewID: true, wantResyncs: 1, wantAudit: []string{auditSubscriptionRecreate, auditResyncTriggered}},
		{name: "missed notifications resync", event: "missed",
			wantResyncs: 1, wantAudit: []string{auditResyncTriggered}},
		{name: "unknown event is ignored", event: "somethingNew"},
		{name: "a subscription that is not ours is ignored", event: "subscriptionRemoved", foreign: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSubsFixture(t, func(o *KeeperOptions) { o.Resources = []string{"users"} })
			ctx := t.Context()
			if _, err := f.k.Ensure(ctx); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			old := f.only(t, "users")
			if tt.reauthErr != nil {
				f.api.failNext("Reauthorize", tt.reauthErr)
			}
			if tt.removed {
				f.api.remove(old.ID)
			}
			id := old.ID
			if tt.foreign {
				id = "not-ours"
			}
			creates := f.api.count("Create")

			err := f.k.HandleLifecycle(ctx, worker.LifecycleEvent{SubscriptionID: id, Event: tt.event})
			if (err != nil) != tt.wantErr {
				t.Fatalf("HandleLifecycle error = %v, want error %v", err, tt.wantErr)
			}
			now := f.only(t, "users")
			if got := now.ID != old.ID; got != tt.wantNewID {
				t.Errorf("new subscription = %v (%s → %s), want %v", got, old.ID, now.ID, tt.wantNewID)
			}
			if !tt.wantNewID && f.api.count("Create") != creates {
				t.Errorf("Create called without a removal")
			}
			if got := f.api.count("Reauthorize"); got != tt.wantReauths {
				t.Errorf("Reauthorize called %d times, want %d", got, tt.wantReauths)
			}
			if got := f.api.renewsOf(old.ID); got != tt.wantRenews {
				t.Errorf("renewed %d times, want %d", got, tt.wantRenews)
			}
			if got := f.resyncs.Load(); got != tt.wantResyncs {
				t.Errorf("Resync called %d times, want %d", got, tt.wantResyncs)
			}
			if got := auditActions(t, f.log); !slices.Equal(got, tt.wantAudit) {
				t.Errorf("audit actions %v, want %v", got, tt.wantAudit)
			}
		})
	}
}
