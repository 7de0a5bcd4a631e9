package sbtest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// fastRetry keeps the client's recovery quick against a local endpoint.
var fastRetry = azservicebus.RetryOptions{MaxRetries: 5, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond}

func newClient(t *testing.T, connectionString string) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(connectionString, &azservicebus.ClientOptions{RetryOptions: fastRetry})
	if err != nil {
		t.Fatalf("NewClientFromConnectionString: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func newSender(t *testing.T, c *azservicebus.Client, queue string) *azservicebus.Sender {
	t.Helper()
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func newReceiver(t *testing.T, c *azservicebus.Client, queue string, sub azservicebus.SubQueue) *azservicebus.Receiver {
	t.Helper()
	r, err := c.NewReceiverForQueue(queue, &azservicebus.ReceiverOptions{SubQueue: sub})
	if err != nil {
		t.Fatalf("NewReceiverForQueue: %v", err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, s *azservicebus.Sender, id, body string) {
	t.Helper()
	err := s.SendMessage(ctxFor(t, 10*time.Second), &azservicebus.Message{MessageID: &id, Body: []byte(body)}, nil)
	if err != nil {
		t.Fatalf("SendMessage %s: %v", id, err)
	}
}

// receiveN receives until it holds n messages or the deadline passes.
func receiveN(t *testing.T, r *azservicebus.Receiver, n int, within time.Duration) []*azservicebus.ReceivedMessage {
	t.Helper()
	ctx := ctxFor(t, within)
	var got []*azservicebus.ReceivedMessage
	for len(got) < n {
		msgs, err := r.ReceiveMessages(ctx, n-len(got), nil)
		if err != nil {
			t.Fatalf("ReceiveMessages: got %d of %d: %v", len(got), n, err)
		}
		got = append(got, msgs...)
	}
	return got
}

// receiveNone asserts that nothing is delivered within d.
func receiveNone(t *testing.T, r *azservicebus.Receiver, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msgs, err := r.ReceiveMessages(ctx, 1, nil)
	if len(msgs) > 0 {
		t.Fatalf("received %q, want nothing", msgs[0].MessageID)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReceiveMessages: %v", err)
	}
}

func stats(t *testing.T, s *sbtest.Server) sbtest.Stats {
	t.Helper()
	st, err := s.Stats(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// waitStats polls until the queue's stats equal want.
func waitStats(t *testing.T, s *sbtest.Server, want sbtest.Stats, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := stats(t, s)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v, want %+v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func code(err error) azservicebus.Code {
	var e *azservicebus.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return azservicebus.Code(fmt.Sprintf("not an *azservicebus.Error: %v", err))
}
