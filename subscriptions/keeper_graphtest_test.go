package subscriptions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
)

// graphtestSubs speaks Graph's subscriptions wire format to the graphtest emulator with
// net/http, so the keeper meets the emulator's rules (409 keyed by resource and changeType)
// without the worker importing the Graph SDK.
type graphtestSubs struct{ url string }

var _ subscriptionAPI = graphtestSubs{}

type graphtestHTTPError struct {
	status int
	body   string
}

func (e *graphtestHTTPError) Error() string   { return fmt.Sprintf("graph %d: %s", e.status, e.body) }
func (e *graphtestHTTPError) NotFound() bool  { return e.status == http.StatusNotFound }
func (e *graphtestHTTPError) Conflict() bool  { return e.status == http.StatusConflict }
func (e *graphtestHTTPError) Temporary() bool { return e.status == 429 || e.status >= 500 }

type graphtestSub struct {
	ID                       string    `json:"id"`
	Resource                 string    `json:"resource"`
	ChangeType               string    `json:"changeType"`
	NotificationURL          string    `json:"notificationUrl"`
	LifecycleNotificationURL string    `json:"lifecycleNotificationUrl,omitempty"`
	ClientState              string    `json:"clientState,omitempty"`
	ExpirationDateTime       time.Time `json:"expirationDateTime"`
}

func (w graphtestSub) sub() Subscription {
	return Subscription{ID: w.ID, Resource: w.Resource, ChangeType: w.ChangeType, NotificationURL: w.NotificationURL,
		LifecycleNotificationURL: w.LifecycleNotificationURL, ExpirationDateTime: w.ExpirationDateTime}
}

func (g graphtestSubs) do(ctx context.Context, method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		_ = json.NewEncoder(&body).Encode(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+"/v1.0/subscriptions"+path, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return &graphtestHTTPError{resp.StatusCode, b.String()}
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (g graphtestSubs) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	var page struct{ Value []graphtestSub }
	if err := g.do(ctx, "GET", "", nil, &page); err != nil {
		return nil, err
	}
	var out []Subscription
	for _, w := range page.Value {
		out = append(out, w.sub())
	}
	return out, nil
}

func (g graphtestSubs) CreateSubscription(ctx context.Context, s SubscriptionSpec) (Subscription, error) {
	var w graphtestSub
	err := g.do(ctx, "POST", "", graphtestSub{Resource: s.Resource, ChangeType: s.ChangeType, NotificationURL: s.NotificationURL,
		LifecycleNotificationURL: s.LifecycleNotificationURL, ClientState: s.ClientState, ExpirationDateTime: s.ExpirationDateTime}, &w)
	return w.sub(), err
}

func (g graphtestSubs) RenewSubscription(ctx context.Context, id string, exp time.Time) (Subscription, error) {
	var w graphtestSub
	err := g.do(ctx, "PATCH", "/"+id, map[string]time.Time{"expirationDateTime": exp}, &w)
	return w.sub(), err
}

func (g graphtestSubs) ReauthorizeSubscription(ctx context.Context, id string) error {
	return g.do(ctx, "POST", "/"+id+"/reauthorize", nil, nil)
}

func (g graphtestSubs) DeleteSubscription(ctx context.Context, id string) error {
	return g.do(ctx, "DELETE", "/"+id, nil, nil)
}

// The same URL change against the emulator: the webhook-era subscription (created by an
// earlier configuration of this application) makes Graph answer 409 to ours.
func TestKeeperReplacesStaleSubscriptionInGraphtest(t *testing.T) {
	t.Parallel()
	clock := clk.NewFake()
	srv := graphtest.NewServer(t, graphtest.NewDirectory(graphtest.SampleTenantID),
		func(o *graphtest.Options) { o.Clock = clock.Now })
	api := graphtestSubs{url: srv.URL()}
	ctx := t.Context()
	old, err := api.CreateSubscription(ctx, SubscriptionSpec{Resource: "users", ChangeType: DefaultSubscriptionChangeType,
		NotificationURL: "https://relay.contoso.example/graph", ClientState: subsSecret,
		ExpirationDateTime: clock.Now().Add(20000 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// Without the replacement the create is refused: the combination is taken.
	_, err = api.CreateSubscription(ctx, SubscriptionSpec{Resource: "users", ChangeType: DefaultSubscriptionChangeType,
		NotificationURL: subsNotifyTo, ExpirationDateTime: clock.Now().Add(time.Hour)})
	if !isConflict(err) {
		t.Fatalf("create beside the old one: %v, want 409", err)
	}
	var resyncs int
	k, err := NewKeeper(api, KeeperOptions{Resources: []string{"users"}, NotificationURL: subsNotifyTo,
		ClientState: subsSecret, Now: clock.Now, After: clock.After, Resync: func() { resyncs++ }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Ensure(ctx)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	held := srv.Subscriptions()
	if len(held) != 1 || held[0].NotificationURL != subsNotifyTo || held[0].ID == old.ID || held[0].ClientState != subsSecret {
		t.Errorf("emulator holds %+v, want only ours to %s", held, subsNotifyTo)
	}
	if len(got) != 1 || !slices.ContainsFunc(held, func(s graphtest.SubscriptionRecord) bool { return s.ID == got[0].ID }) {
		t.Errorf("Ensure returned %+v", got)
	}
	if resyncs != 1 {
		t.Errorf("%d resyncs, want 1", resyncs)
	}
}
