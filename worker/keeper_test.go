package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The fake Graph: an in-memory subscriptions endpoint that enforces Graph's rules
// (expiry in the future and at most 41,760 minutes ahead, 409 on a duplicate resource and
// notification URL, 404 for an unknown id, expired subscriptions disappear).

type subsFakeErr struct {
	status int
	msg    string
}

func (e *subsFakeErr) Error() string   { return fmt.Sprintf("graph %d: %s", e.status, e.msg) }
func (e *subsFakeErr) NotFound() bool  { return e.status == 404 }
func (e *subsFakeErr) Conflict() bool  { return e.status == 409 }
func (e *subsFakeErr) Temporary() bool { return e.status == 429 || e.status >= 500 }
func (e *subsFakeErr) StatusCode() int { return e.status }

type subsFakeGraph struct {
	now func() time.Time

	mu           sync.Mutex
	subs         map[string]Subscription
	specs        map[string]SubscriptionSpec
	nextID       int
	calls        map[string]int
	renews       map[string]int
	fail         map[string][]error // scripted failures by method, taken in order
	hideNextList bool
	gateID       string        // Renew of this id waits for gate
	gate         chan struct{} // closed by releaseGate to let it through
	gateOnce     sync.Once
	entered      chan string // receives the id when a gated Renew starts
}

func newSubsFakeGraph(now func() time.Time) *subsFakeGraph {
	return &subsFakeGraph{now: now, subs: map[string]Subscription{}, specs: map[string]SubscriptionSpec{},
		calls: map[string]int{}, renews: map[string]int{}, fail: map[string][]error{}}
}

func (g *subsFakeGraph) begin(method string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls[method]++
	for id, s := range g.subs {
		if !s.ExpirationDateTime.After(g.now()) {
			delete(g.subs, id) // Graph removes expired subscriptions
		}
	}
	if q := g.fail[method]; len(q) > 0 {
		g.fail[method] = q[1:]
		return q[0]
	}
	return nil
}

func (g *subsFakeGraph) checkExpiry(exp time.Time) error {
	if !exp.After(g.now()) || exp.After(g.now().Add(MaxSubscriptionLifetime)) {
		return &subsFakeErr{400, "expirationDateTime out of range"}
	}
	return nil
}

func (g *subsFakeGraph) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	if err := g.begin("List"); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hideNextList {
		g.hideNextList = false
		return nil, nil
	}
	var out []Subscription
	for _, s := range g.subs {
		out = append(out, s)
	}
	return out, nil
}

func (g *subsFakeGraph) CreateSubscription(ctx context.Context, spec SubscriptionSpec) (Subscription, error) {
	if err := g.begin("Create"); err != nil {
		return Subscription{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkExpiry(spec.ExpirationDateTime); err != nil {
		return Subscription{}, err
	}
	for _, s := range g.subs {
		if strings.EqualFold(s.Resource, spec.Resource) && s.NotificationURL == spec.NotificationURL {
			return Subscription{}, &subsFakeErr{409, "subscription already exists"}
		}
	}
	g.nextID++
	s := Subscription{ID: fmt.Sprintf("sub-%d", g.nextID), Resource: spec.Resource, ChangeType: spec.ChangeType,
		NotificationURL: spec.NotificationURL, LifecycleNotificationURL: spec.LifecycleNotificationURL,
		ExpirationDateTime: spec.ExpirationDateTime}
	g.subs[s.ID] = s
	g.specs[s.ID] = spec
	return s, nil
}

func (g *subsFakeGraph) RenewSubscription(ctx context.Context, id string, exp time.Time) (Subscription, error) {
	if err := g.begin("Renew"); err != nil {
		return Subscription{}, err
	}
	g.mu.Lock()
	gated := id == g.gateID && g.gate != nil
	g.mu.Unlock()
	if gated {
		g.entered <- id
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.subs[id]
	if !ok {
		return Subscription{}, &subsFakeErr{404, "subscription not found"}
	}
	if err := g.checkExpiry(exp); err != nil {
		return Subscription{}, err
	}
	g.renews[id]++
	s.ExpirationDateTime = exp
	g.subs[id] = s
	return s, nil
}

func (g *subsFakeGraph) ReauthorizeSubscription(ctx context.Context, id string) error {
	if err := g.begin("Reauthorize"); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.subs[id]; !ok {
		return &subsFakeErr{404, "subscription not found"}
	}
	return nil
}

func (g *subsFakeGraph) DeleteSubscription(ctx context.Context, id string) error {
	if err := g.begin("Delete"); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.subs[id]; !ok {
		return &subsFakeErr{404, "subscription not found"}
	}
	delete(g.subs, id)
	return nil
}

// add stores a subscription made by someone else (another replica, another app).
func (g *subsFakeGraph) add(s Subscription) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.subs[s.ID] = s
}

// remove drops a subscription the way Graph does when it removes one.
func (g *subsFakeGraph) remove(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.subs, id)
}

func (g *subsFakeGraph) failNext(method string, errs ...error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail[method] = append(g.fail[method], errs...)
}

func (g *subsFakeGraph) gateRenew(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gateID, g.gate, g.entered = id, make(chan struct{}), make(chan string, 1)
}

func (g *subsFakeGraph) releaseGate() { g.gateOnce.Do(func() { close(g.gate) }) }

// awaitGated waits until a gated Renew has started.
func (g *subsFakeGraph) awaitGated(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the gated renewal")
	}
}

func (g *subsFakeGraph) count(method string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[method]
}

func (g *subsFakeGraph) renewsOf(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.renews[id]
}

// byResource returns Graph's subscriptions for resource, any notification URL.
func (g *subsFakeGraph) byResource(resource string) []Subscription {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Subscription
	for _, s := range g.subs {
		if s.Resource == resource {
			out = append(out, s)
		}
	}
	sortSubscriptions(out)
	return out
}

// auditActions returns the action of each audit record in l, in order.
func auditActions(t *testing.T, l *logSink) []string {
	t.Helper()
	var out []string
	for _, rec := range l.audits(t) {
		out = append(out, fmt.Sprint(rec[subKeyAction]))
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
	clock   *fakeClock
	log     *logSink
	reg     *prometheus.Registry
	resyncs atomic.Int32
}

func newSubsFixture(t *testing.T, edit func(*KeeperOptions)) *subsFixture {
	t.Helper()
	f := &subsFixture{clock: newFakeClock(), log: &logSink{}, reg: prometheus.NewRegistry()}
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
	waitUntil(t, "Run to wait on the clock", func() bool { return f.clock.Pending() == 1 })
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
	theirs := Subscription{ID: "other-replica", Resource: "users", NotificationURL: subsNotifyTo,
		ExpirationDateTime: f.clock.Now().Add(20000 * time.Minute)}
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

func TestRunRenewsEachSubscriptionOnceBeforeExpiry(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, nil)
	f.run(t)
	users, group := f.only(t, "users"), f.only(t, "groups/"+subsGroup)

	f.advance(t, subsRenewAt-time.Minute)
	if got := f.api.count("Renew"); got != 0 {
		t.Fatalf("Renew called %d times before 25%% of the lifetime is left, want 0", got)
	}
	if got, want := subsGauge(t, f.reg), (DefaultSubscriptionLifetime - subsRenewAt + time.Minute).Seconds(); got != want {
		t.Errorf("tpe_subscription_expiry_seconds = %v, want %v", got, want)
	}

	f.advance(t, 2*time.Minute)
	for _, s := range []Subscription{users, group} {
		if got := f.api.renewsOf(s.ID); got != 1 {
			t.Errorf("%s renewed %d times, want 1", s.Resource, got)
		}
		if got, want := f.only(t, s.Resource).ExpirationDateTime, f.clock.Now().Add(DefaultSubscriptionLifetime); !got.Equal(want) {
			t.Errorf("%s expires %v, want %v", s.Resource, got, want)
		}
	}
	if got := testutil.ToFloat64(f.k.renewals.WithLabelValues("success")); got != 2 {
		t.Errorf("renewals{outcome=success} = %v, want 2", got)
	}

	// Past the old expiry nothing has lapsed and nothing more was renewed.
	f.advance(t, DefaultSubscriptionLifetime-subsRenewAt)
	if got := f.api.count("Renew"); got != 2 {
		t.Errorf("Renew called %d times in total, want 2", got)
	}
	if got := f.api.count("Create"); got != 2 {
		t.Errorf("Create called %d times, want 2 (nothing lapsed)", got)
	}
}

func subsGauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range families {
		if mf.GetName() == "tpe_subscription_expiry_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("tpe_subscription_expiry_seconds not registered")
	return 0
}

func TestRunRetriesAFailedRenewalWithBackoff(t *testing.T) {
	t.Parallel()
	f := newSubsFixture(t, func(o *KeeperOptions) { o.Resources = []string{"users"} })
	f.run(t)
	f.api.failNext("Renew", &subsFakeErr{503, "unavailable"}, &subsFakeErr{429, "throttled"})

	steps := []struct {
		advance    time.Duration
		wantCalls  int
		wantFailed float64
	}{
		{subsRenewAt, 1, 1},               // due: first attempt fails; backoff(1) = 1 min
		{time.Minute - time.Second, 1, 1}, // still backing off
		{time.Second, 2, 2},               // second attempt fails; backoff(2) = 2 min
		{2 * time.Minute, 3, 2},           // third attempt succeeds
		{time.Hour, 3, 2},                 // nothing more to do
	}
	for i, s := range steps {
		f.advance(t, s.advance)
		if got := f.api.count("Renew"); got != s.wantCalls {
			t.Errorf("step %d: Renew called %d times, want %d", i, got, s.wantCalls)
		}
		if got := testutil.ToFloat64(f.k.renewals.WithLabelValues("failure")); got != s.wantFailed {
			t.Errorf("step %d: renewals{outcome=failure} = %v, want %v", i, got, s.wantFailed)
		}
	}
	if got := f.api.renewsOf(f.only(t, "users").ID); got != 1 {
		t.Errorf("successful renewals %d, want 1", got)
	}
}

func TestRunRecreatesASubscriptionGraphRemovedSilently(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		recheck    time.Duration
		wantRenews int // renewal attempts (the one that found it gone)
	}{
		{"found by the periodic list", time.Hour, 0},
		{"found by the renewal", 60 * 24 * time.Hour, 1}, // no list before the renewal is due
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSubsFixture(t, func(o *KeeperOptions) {
				o.Resources = []string{"users"}
				o.Recheck = tt.recheck
			})
			f.run(t)
			old := f.only(t, "users")
			f.api.remove(old.ID)
			f.advance(t, subsRenewAt)
			if now := f.only(t, "users"); now.ID == old.ID {
				t.Errorf("users subscription is still %s, want a new one", old.ID)
			}
			if got := f.api.count("Renew"); got != tt.wantRenews {
				t.Errorf("Renew called %d times, want %d", got, tt.wantRenews)
			}
			if got := f.resyncs.Load(); got != 1 {
				t.Errorf("Resync called %d times, want 1 (notifications were lost)", got)
			}
			if got, want := auditActions(t, f.log), []string{auditSubscriptionRecreate, auditResyncTriggered}; !slices.Equal(got, want) {
				t.Errorf("audit actions %v, want %v", got, want)
			}
			if audits := f.log.audits(t); len(audits) > 0 && audits[0][subKeyPreviousID] != old.ID {
				t.Errorf("recreate audit names previous %v, want %s", audits[0][subKeyPreviousID], old.ID)
			}
		})
	}
}

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
					lifecycleErr <- f.k.HandleLifecycle(t.Context(), LifecycleEvent{users.ID, "reauthorizationRequired"})
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
			waitUntil(t, "the second caller to join", func() bool {
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
			audits := f.log.audits(t)
			if len(audits) == 0 || audits[0][subKeyAction] != auditSubscriptionReauthorize || audits[0][subKeyHow] != tt.wantHow {
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

			err := f.k.HandleLifecycle(ctx, LifecycleEvent{SubscriptionID: id, Event: tt.event})
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
	err := f.k.HandleLifecycle(t.Context(), LifecycleEvent{users.ID, "reauthorizationRequired"})
	if err == nil || strings.Contains(err.Error(), subsSecret) {
		t.Errorf("HandleLifecycle error %v: want an error without the client state", err)
	}
	if !IsTemporary(err) {
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

func TestSubscriptionResources(t *testing.T) {
	got := SubscriptionResources([]string{" 0B7E3C1A-2D4F-4A6B-8C9D-1E2F3A4B5C6D", "1c8f4d2b-3e5a-4b7c-9d0e-2f3a4b5c6d7e"})
	want := []string{"users", "groups/0b7e3c1a-2d4f-4a6b-8c9d-1e2f3a4b5c6d", "groups/1c8f4d2b-3e5a-4b7c-9d0e-2f3a4b5c6d7e"}
	if !slices.Equal(got, want) {
		t.Errorf("SubscriptionResources = %v, want %v", got, want)
	}
}

func TestEventGridURL(t *testing.T) {
	t.Parallel()
	const sub = "6a1f0d2e-8c4b-4b4e-9a57-2f3c4d5e6f70"
	const want = "EventGrid:?azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&partnertopic=tpe-graph&location=westeurope"
	tests := []struct {
		name, spec, want, wantErr string
	}{
		{"canonical", "azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&partnertopic=tpe-graph&location=westeurope", want, ""},
		{"any order and case", "Location=westeurope&PartnerTopic=tpe-graph&ResourceGroup=rg-tpe&AzureSubscriptionId=" + sub, want, ""},
		{"already a notification URL", want, want, ""},
		{"missing location", "azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&partnertopic=tpe-graph", "", "missing location"},
		{"missing partner topic", "azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&location=westeurope", "", "missing partnertopic"},
		{"empty value", "azuresubscriptionid=" + sub + "&resourcegroup=&partnertopic=tpe-graph&location=westeurope", "", "missing resourcegroup"},
		{"empty", "", "", "missing azuresubscriptionid"},
		{"unknown key", "azuresubscriptionid=" + sub + "&resourcegroup=rg&partnertopic=t&location=l&topic=x", "", `unknown key "topic"`},
		{"subscription id not a GUID", "azuresubscriptionid=mysub&resourcegroup=rg&partnertopic=t&location=l", "", "GUID"},
		{"value that would break the URL", "azuresubscriptionid=" + sub + "&resourcegroup=rg#x&partnertopic=t&location=l", "", "resourcegroup has characters"},
		{"key twice", "location=a&location=b", "", "location given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EventGridURL(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EventGridURL(%q) error = %v, want one mentioning %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("EventGridURL(%q) = %q, %v; want %q", tt.spec, got, err, tt.want)
			}
		})
	}
}
