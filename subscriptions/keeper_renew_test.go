package subscriptions

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
)

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
			if audits := f.log.Audits(t); len(audits) > 0 && audits[0][logkey.PreviousSubscriptionID] != old.ID {
				t.Errorf("recreate audit names previous %v, want %s", audits[0][logkey.PreviousSubscriptionID], old.ID)
			}
		})
	}
}
