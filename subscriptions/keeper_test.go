package subscriptions

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"

	"github.com/tpe-provisioner/tpe-provisioner/worker"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
)

// auditActions returns the action of each audit record in l, in order.
func auditActions(t *testing.T, l *wt.LogSink) []string {
	t.Helper()
	var out []string
	for _, rec := range l.Audits(t) {
		out = append(out, fmt.Sprint(rec[logkey.Action]))
	}
	return out
}

const (
	subsSecret   = "s3cr3t-client-state-do-not-log"
	subsNotifyTo = "EventGrid:?azuresubscriptionid=6a1f0d2e-8c4b-4b4e-9a57-2f3c4d5e6f70&resourcegroup=rg-tpe&partnertopic=tpe-graph&location=westeurope"
	subsGroup    = "0b7e3c1a-2d4f-4a6b-8c9d-1e2f3a4b5c6d"
)

type subsFixture struct {
	k       *Keeper
	api     *subsFakeGraph
	clock   *clk.Fake
	log     *wt.LogSink
	reg     *prometheus.Registry
	resyncs atomic.Int32
}

func newSubsFixture(t *testing.T, edit func(*KeeperOptions)) *subsFixture {
	t.Helper()
	f := &subsFixture{clock: clk.NewFake(), log: &wt.LogSink{}, reg: prometheus.NewRegistry()}
	f.api = newSubsFakeGraph(f.clock.Now)
	o := KeeperOptions{
		Resources:       SubscriptionResources([]string{subsGroup}),
		NotificationURL: subsNotifyTo,
		ClientState:     subsSecret,
		Now:             f.clock.Now,
		After:           f.clock.After,
		Backoff:         func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute },
		Logger:          slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Resync:          func() { f.resyncs.Add(1) },
		Registerer:      f.reg,
	}
	if edit != nil {
		edit(&o)
	}
	k, err := NewKeeper(f.api, o)
	if err != nil {
		t.Fatalf("NewKeeper: %v", err)
	}
	f.k = k
	t.Cleanup(func() {
		if strings.Contains(f.log.String(), subsSecret) {
			t.Errorf("the client state appears in the log:\n%s", f.log.String())
		}
	})
	return f
}

// run starts Run and waits until it is idle (blocked on the clock).
func (f *subsFixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
	f.idle(t)
}

// idle waits until Run is blocked on the fake clock.
func (f *subsFixture) idle(t *testing.T) {
	t.Helper()
	clk.WaitUntil(t, "Run to wait on the clock", func() bool { return f.clock.Pending() == 1 })
}

// advance moves the clock and waits until Run is idle again.
func (f *subsFixture) advance(t *testing.T, d time.Duration) {
	t.Helper()
	f.clock.Advance(d)
	f.idle(t)
}

func (f *subsFixture) only(t *testing.T, resource string) Subscription {
	t.Helper()
	subs := f.api.byResource(resource)
	if len(subs) != 1 {
		t.Fatalf("Graph has %d subscriptions for %s, want 1: %+v", len(subs), resource, subs)
	}
	return subs[0]
}

// subsRenewAt is when a subscription created at the fixture's start becomes due (25% left).
const subsRenewAt = DefaultSubscriptionLifetime * 3 / 4

func TestEnsureCreatesOneSubscriptionPerResourceAndIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, nil)
	ctx := t.Context()
	for range 2 {
		if _, err := f.k.Ensure(ctx); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	for _, res := range []string{"users", "groups/" + subsGroup} {
		s := f.only(t, res)
		spec := f.api.specs[s.ID]
		want := SubscriptionSpec{Resource: res, ChangeType: "updated,deleted", NotificationURL: subsNotifyTo,
			LifecycleNotificationURL: subsNotifyTo, ClientState: subsSecret,
			ExpirationDateTime: f.clock.Now().Add(DefaultSubscriptionLifetime)}
		if spec != want {
			t.Errorf("created %s with\n%+v, want\n%+v", res, spec, want)
		}
	}
	if got := f.api.count("Create"); got != 2 {
		t.Errorf("Create called %d times over two Ensures, want 2", got)
	}
	if got := f.api.count("Renew"); got != 0 {
		t.Errorf("Renew called %d times for fresh subscriptions, want 0", got)
	}
}

func TestEnsureAdoptsWhatAnotherReplicaCreated(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, nil)
	theirs := Subscription{ID: "other-replica", Resource: "users", ChangeType: DefaultSubscriptionChangeType,
		NotificationURL: subsNotifyTo, ExpirationDateTime: f.clock.Now().Add(20000 * time.Minute)}
	f.api.add(theirs)
	f.api.hideNextList = true // the other replica created it after our list
	got, err := f.k.Ensure(t.Context())
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if s := f.only(t, "users"); s.ID != "other-replica" {
		t.Errorf("users subscription is %s, want the adopted other-replica", s.ID)
	}
	if !slices.ContainsFunc(got, func(s Subscription) bool { return s.ID == "other-replica" }) {
		t.Errorf("Ensure returned %+v, want other-replica among them", got)
	}
}

// Graph keys subscriptions by resource and changeType: after a notification URL change
// (webhook to Event Grid) our old subscription blocks the new one with a 409. The keeper
// replaces it, audits the replacement and asks for a resync, instead of failing while the
// old one lapses and notifications stop.
func TestEnsureReplacesOursAfterANotificationURLChange(t *testing.T) {
	t.Parallel()
	for _, hidden := range []bool{false, true} {
		t.Run(fmt.Sprintf("seen in the first list %v", !hidden), func(t *testing.T) {
			t.Parallel()
			f := newSubsFixture(t, func(o *KeeperOptions) { o.Resources = []string{"users"} })
			old := Subscription{ID: "webhook-era", Resource: "users", ChangeType: "deleted,updated",
				NotificationURL: "https://relay.contoso.example/graph", ExpirationDateTime: f.clock.Now().Add(20000 * time.Minute)}
			f.api.add(old)
			f.api.hideNextList = hidden // found only through the 409
			got, err := f.k.Ensure(t.Context())
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			s := f.only(t, "users")
			if s.ID == old.ID || s.NotificationURL != subsNotifyTo {
				t.Errorf("users subscription %+v, want a new one to %s", s, subsNotifyTo)
			}
			if len(got) != 1 || got[0].ID != s.ID {
				t.Errorf("Ensure returned %+v, want only %s", got, s.ID)
			}
			if want := []string{auditSubscriptionRecreate, auditResyncTriggered}; !slices.Equal(auditActions(t, f.log), want) {
				t.Errorf("audit %v, want %v", auditActions(t, f.log), want)
			}
			if f.resyncs.Load() != 1 {
				t.Errorf("%d resyncs, want 1: notifications went to the old URL meanwhile", f.resyncs.Load())
			}
			if !strings.Contains(f.log.String(), `"how":"replaced"`) || !strings.Contains(f.log.String(), old.ID) {
				t.Errorf("the audit does not name the replaced subscription:\n%s", f.log.String())
			}
			// Idempotent: the next Ensure has nothing to do.
			if _, err := f.k.Ensure(t.Context()); err != nil || f.api.count("Create") != 1+boolInt(hidden) {
				t.Errorf("second Ensure: err %v, %d creates", err, f.api.count("Create"))
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A subscription for one of our resources with another changeType is another combination
// for Graph: it is not ours to replace.
func TestEnsureKeepsAnotherChangeTypeOnAnotherURL(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, func(o *KeeperOptions) { o.Resources = []string{"users"} })
	f.api.add(Subscription{ID: "created-only", Resource: "users", ChangeType: "created",
		NotificationURL: "https://elsewhere.example/hook", ExpirationDateTime: f.clock.Now().Add(time.Hour)})
	if _, err := f.k.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if got := f.api.byResource("users"); len(got) != 2 || f.api.count("Delete") != 0 {
		t.Errorf("Graph has %+v after %d deletes, want both kept", got, f.api.count("Delete"))
	}
}

func TestEnsureLeavesOtherAppsSubscriptionsAlone(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, nil)
	foreign := Subscription{ID: "foreign", Resource: "users", NotificationURL: "https://elsewhere.example/hook",
		ExpirationDateTime: f.clock.Now().Add(time.Hour)}
	f.api.add(foreign)
	if _, err := f.k.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if got := len(f.api.byResource("users")); got != 2 {
		t.Errorf("Graph has %d users subscriptions, want 2 (ours and the foreign one)", got)
	}
	if got := f.api.renewsOf("foreign"); got != 0 {
		t.Errorf("foreign subscription renewed %d times, want 0", got)
	}
	if err := f.k.Delete(t.Context()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	left := f.api.byResource("users")
	if len(left) != 1 || left[0].ID != "foreign" {
		t.Errorf("after Delete Graph has %+v, want only the foreign subscription", left)
	}
	if got := len(f.api.byResource("groups/" + subsGroup)); got != 0 {
		t.Errorf("after Delete %d group subscriptions remain, want 0", got)
	}
}

func TestEnsureRenewsASubscriptionNearExpiry(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, nil)
	f.api.add(Subscription{ID: "old", Resource: "users", NotificationURL: subsNotifyTo,
		ExpirationDateTime: f.clock.Now().Add(24 * time.Hour)})
	if _, err := f.k.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	s := f.only(t, "users")
	if want := f.clock.Now().Add(DefaultSubscriptionLifetime); s.ID != "old" || !s.ExpirationDateTime.Equal(want) {
		t.Errorf("users subscription %s expires %v, want old renewed to %v", s.ID, s.ExpirationDateTime, want)
	}
}

func TestKeeperNeverLogsTheClientState(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, func(o *KeeperOptions) { o.Resources = []string{"users"} })
	// A collaborator that echoes the request body in its error must not leak the secret.
	echo := &subsFakeErr{500, `request {"clientState":"` + subsSecret + `"} failed`}
	f.api.failNext("Create", echo)
	f.run(t) // the failed Ensure is logged by Run
	if got := len(f.api.byResource("users")); got != 0 {
		t.Fatalf("users subscriptions %d after a failed create, want 0", got)
	}
	f.advance(t, time.Minute) // backoff(1): Ensure again, succeeds
	users := f.only(t, "users")
	f.api.failNext("Reauthorize", echo)
	err := f.k.HandleLifecycle(t.Context(), worker.LifecycleEvent{SubscriptionID: users.ID, Event: "reauthorizationRequired"})
	if err == nil || strings.Contains(err.Error(), subsSecret) {
		t.Errorf("HandleLifecycle error %v: want an error without the client state", err)
	}
	if !worker.IsTemporary(err) {
		t.Errorf("HandleLifecycle error %v lost its Temporary behaviour", err)
	}
	if !strings.Contains(f.log.String(), "[redacted]") {
		t.Errorf("log does not show the redacted error:\n%s", f.log.String())
	}
	// newSubsFixture's cleanup fails the test if the secret reached the log.
}

func TestNewKeeperRejectsBadOptions(t *testing.T) {
	t.Parallel()
	good := KeeperOptions{Resources: []string{"users"}, NotificationURL: subsNotifyTo}
	tests := []struct {
		name string
		edit func(*KeeperOptions)
		want string
	}{
		{"no resources", func(o *KeeperOptions) { o.Resources = nil }, "no resources"},
		{"no notification URL", func(o *KeeperOptions) { o.NotificationURL = "" }, "no notification URL"},
		{"lifetime beyond Graph's", func(o *KeeperOptions) { o.MaxLifetime = MaxSubscriptionLifetime + time.Minute }, "beyond"},
		{"renew fraction of 1", func(o *KeeperOptions) { o.RenewWhenRemaining = 1 }, "RenewWhenRemaining"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.edit(&o)
			_, err := NewKeeper(newSubsFakeGraph(time.Now), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewKeeper error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := NewKeeper(newSubsFakeGraph(time.Now), good); err != nil {
		t.Errorf("NewKeeper(good options): %v", err)
	}
}

// A keeper given no Logger logs nothing, like every other constructor of the service; it
// does not write to slog.Default. Not parallel: it swaps the default logger.
func TestKeeperWithoutLoggerDiscards(t *testing.T) {
	var def bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	f := newSubsFixture(t, func(o *KeeperOptions) { o.Logger = nil })
	if _, err := f.k.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if def.Len() != 0 {
		t.Errorf("a keeper without a Logger wrote to slog.Default:\n%s", def.String())
	}
}
