package sbtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// What the endpoint does not implement fails with a description that says so, rather than
// seeming to work.
func TestUnimplementedFeaturesAreRefused(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	// A 501 from $management is retried like any unknown failure; one try is enough here.
	c, err := azservicebus.NewClientFromConnectionString(s.ConnectionString(), &azservicebus.ClientOptions{RetryOptions: azservicebus.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatalf("NewClientFromConnectionString: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	r := newReceiver(t, c, s.Queue(), 0)

	tests := []struct {
		name string
		call func(ctx context.Context) error
		want string
	}{
		{"receive deferred", func(ctx context.Context) error {
			_, err := r.ReceiveDeferredMessages(ctx, []int64{1}, nil)
			return err
		}, "sbtest does not implement the management operation com.microsoft:receive-by-sequence-number"},
		{"session receiver", func(ctx context.Context) error {
			_, err := c.AcceptSessionForQueue(ctx, s.Queue(), "session-1", nil)
			return err
		}, "sbtest does not implement source filters"},
		{"topic subscription", func(ctx context.Context) error {
			sub, err := c.NewReceiverForSubscription("topic", "sub", nil)
			if err != nil {
				return err
			}
			defer sub.Close(context.Background())
			_, err = sub.ReceiveMessages(ctx, 1, nil)
			return err
		}, "sbtest does not implement topic/subscriptions/sub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(ctxFor(t, 20*time.Second))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if st := stats(t, s); st.Active != 0 {
		t.Fatalf("stats = %+v, want nothing enqueued by refused calls", st)
	}
}

func TestExpiredMessageIsNotDelivered(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())
	ttl := 200 * time.Millisecond
	if err := sender.SendMessage(ctxFor(t, 10*time.Second), &azservicebus.Message{MessageID: ptr("short"), Body: []byte("x"), TimeToLive: &ttl}, nil); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	send(t, sender, "long", "y")
	time.Sleep(2 * ttl)

	r := newReceiver(t, c, s.Queue(), 0)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if m.MessageID != "long" {
		t.Fatalf("received %s, want long (short expired)", m.MessageID)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Completed: 1, Expired: 1, Deliveries: 1}, 5*time.Second)
}

func TestPeekShowsMessagesWithoutLocking(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())
	send(t, sender, "m1", "one")
	send(t, sender, "m2", "two")
	r := newReceiver(t, c, s.Queue(), 0)

	got, err := r.PeekMessages(ctxFor(t, 10*time.Second), 10, nil)
	if err != nil {
		t.Fatalf("PeekMessages: %v", err)
	}
	if len(got) != 2 || got[0].MessageID != "m1" || string(got[1].Body) != "two" || got[1].SequenceNumber == nil {
		t.Fatalf("peeked %d messages: %+v", len(got), got)
	}
	if st := stats(t, s); st.Active != 2 || st.Locked != 0 || st.Deliveries != 0 {
		t.Fatalf("stats = %+v, want both still active and undelivered", st)
	}
}
