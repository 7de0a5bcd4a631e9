package graph_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

const clientState = "s3cret-client-state"

func TestSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c, srv := newClient(t, testDirectory(t), graph.Options{}, func(o *graphtest.Options) {
		o.Clock = func() time.Time { return now }
	})
	ctx := context.Background()
	spec := graph.SubscriptionSpec{
		Resource:                 "users",
		ChangeType:               "updated,deleted",
		NotificationURL:          "EventGrid:?azuresubscriptionid=6c1e2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b&resourcegroup=rg-tpe&partnertopic=tpe-users&location=westeurope",
		LifecycleNotificationURL: "EventGrid:?azuresubscriptionid=6c1e2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b&resourcegroup=rg-tpe&partnertopic=tpe-users&location=westeurope",
		ClientState:              clientState,
		ExpirationDateTime:       now.Add(41000 * time.Minute),
	}

	created, err := c.CreateSubscription(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	want := graph.Subscription{ID: created.ID, Resource: spec.Resource, ChangeType: spec.ChangeType,
		NotificationURL: spec.NotificationURL, LifecycleNotificationURL: spec.LifecycleNotificationURL,
		ExpirationDateTime: spec.ExpirationDateTime, ClientState: clientState}
	if created.ID == "" || created != want {
		t.Fatalf("created\n got %+v\nwant %+v", created, want)
	}

	_, err = c.CreateSubscription(ctx, spec)
	var ge *graph.Error
	if !asGraphError(err, &ge) || !ge.Conflict() || classify(err) != (behaviour{}) {
		t.Errorf("second create: err %v, want a 409 conflict that is neither temporary nor systemic", err)
	}

	tooLate := spec
	tooLate.Resource, tooLate.ExpirationDateTime = "groups", now.Add(41761*time.Minute)
	if _, err := c.CreateSubscription(ctx, tooLate); !asGraphError(err, &ge) || ge.StatusCode != 400 {
		t.Errorf("create beyond 41,760 minutes: err %v, want 400", err)
	}

	// Graph lists subscriptions without their clientState (subscription-list).
	listed := want
	listed.ClientState = ""
	list, err := c.ListSubscriptions(ctx)
	if err != nil || len(list) != 1 || list[0] != listed {
		t.Fatalf("ListSubscriptions = %+v, %v; want [%+v]", list, err, listed)
	}

	renewTo := now.Add(40000 * time.Minute)
	renewed, err := c.RenewSubscription(ctx, created.ID, renewTo)
	if err != nil || !renewed.ExpirationDateTime.Equal(renewTo) {
		t.Fatalf("RenewSubscription = %+v, %v; want expiration %v", renewed, err, renewTo)
	}
	if got := srv.Subscriptions()[0].ExpirationDateTime; !got.Equal(renewTo) {
		t.Errorf("emulator holds expiration %v, want %v", got, renewTo)
	}

	if err := c.ReauthorizeSubscription(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if got := srv.Subscriptions()[0].Reauthorized; got != 1 {
		t.Errorf("reauthorized %d times, want 1", got)
	}

	if err := c.DeleteSubscription(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.ListSubscriptions(ctx); len(list) != 0 {
		t.Errorf("after delete, ListSubscriptions = %+v, want none", list)
	}
	if err := c.DeleteSubscription(ctx, created.ID); !classify(err).notFound {
		t.Errorf("deleting again: err %v, want not found", err)
	}
	if err := c.ReauthorizeSubscription(ctx, created.ID); !classify(err).notFound {
		t.Errorf("reauthorizing a deleted subscription: err %v, want not found", err)
	}
}

func asGraphError(err error, target **graph.Error) bool { return errors.As(err, target) }

func TestSubscriptionNeverShowsClientState(t *testing.T) {
	t.Parallel()
	s := graph.Subscription{ID: "7f105c7d-2dc5-4530-97cd-000000000001", Resource: "users", ClientState: clientState}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("renewed", "subscription", s)
	for name, out := range map[string]string{"slog": buf.String(), "%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%s": fmt.Sprint(s)} {
		if strings.Contains(out, clientState) {
			t.Errorf("%s output shows the client state: %s", name, out)
		}
		if !strings.Contains(out, s.ID) {
			t.Errorf("%s output lacks the id: %s", name, out)
		}
	}
}
