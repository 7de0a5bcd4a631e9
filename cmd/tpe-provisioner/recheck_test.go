package main

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

type fakeScheduledSender struct {
	sent []*azservicebus.Message
	err  error
}

func (f *fakeScheduledSender) SendMessage(_ context.Context, m *azservicebus.Message, _ *azservicebus.SendMessageOptions) error {
	f.sent = append(f.sent, m)
	return f.err
}

// A re-check is a reconcile command scheduled past a PUT's whole retry budget.
func TestQueueRecheckSchedulesAReconcileCommand(t *testing.T) {
	t.Parallel()
	budget := time.Duration(acs.DefaultMaxRetries+1)*acs.DefaultTryTimeout + time.Duration(acs.DefaultMaxRetries)*acs.DefaultMaxThrottleWait
	if recheckDelay <= budget {
		t.Fatalf("recheckDelay = %s, want more than a PUT's retry budget %s", recheckDelay, budget)
	}
	s := &fakeScheduledSender{}
	const oid = "a11ce000-0000-4000-8000-00000000000a"
	gaveUp := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := servicebus.Recheck(s, recheckDelay)(context.Background(), worker.Target{Principal: oid, Command: worker.CommandReconcile}, gaveUp); err != nil {
		t.Fatal(err)
	}
	if len(s.sent) != 1 {
		t.Fatalf("sent %d messages, want 1", len(s.sent))
	}
	m := s.sent[0]
	var body map[string]string
	if err := json.Unmarshal(m.Body, &body); err != nil || body["command"] != "reconcile" || body["principal"] != oid {
		t.Errorf("body = %s, want a reconcile command for %s", m.Body, oid)
	}
	if m.ScheduledEnqueueTime == nil || !m.ScheduledEnqueueTime.Equal(gaveUp.Add(recheckDelay)) {
		t.Errorf("ScheduledEnqueueTime = %v, want %s", m.ScheduledEnqueueTime, gaveUp.Add(recheckDelay))
	}
	if m.MessageID == nil || *m.MessageID == "" || m.ContentType == nil || *m.ContentType != "application/json" {
		t.Errorf("message id %v, content type %v: want both set", m.MessageID, m.ContentType)
	}

	s.err = &azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}
	err := servicebus.Recheck(s, recheckDelay)(context.Background(), worker.Target{Principal: oid}, gaveUp)
	if !worker.IsSystemic(err) {
		t.Errorf("unauthorized send: error %v, want systemic", err)
	}
	s.err = errors.New("link detached")
	if err := servicebus.Recheck(s, recheckDelay)(context.Background(), worker.Target{Principal: oid}, gaveUp); !worker.IsTemporary(err) {
		t.Errorf("failed send: error %v, want temporary", err)
	}
}

// TestQueueRecheckOnTheLocalEndpoint sends a re-check through the real client to the local
// Service Bus endpoint: the broker holds it until its scheduled time, then delivers the
// reconcile command, and a second send of the same re-check is dropped by duplicate
// detection.
func TestQueueRecheckOnTheLocalEndpoint(t *testing.T) {
	f := newSBFixture(t, sbtest.Options{Queue: "tpe-notifications", LockDuration: 5 * time.Second})
	sender := localSender(t, f.client, f.sb.Queue())
	const oid = "a11ce000-0000-4000-8000-00000000000b"
	const delay = 1500 * time.Millisecond
	gaveUp := time.Now()
	recheck := servicebus.Recheck(sender, delay)
	for range 2 {
		if err := recheck(t.Context(), worker.Target{Principal: oid, Command: worker.CommandReconcile}, gaveUp); err != nil {
			t.Fatal(err)
		}
	}
	receiver, err := f.client.NewReceiverForQueue(f.sb.Queue(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer receiver.Close(context.Background())
	early, cancel := context.WithTimeout(t.Context(), delay/3)
	msgs, _ := receiver.ReceiveMessages(early, 2, nil)
	cancel()
	if len(msgs) != 0 && time.Since(gaveUp) < delay {
		t.Fatalf("received %d messages %s after the send, before the scheduled time", len(msgs), time.Since(gaveUp))
	}
	var got []*azservicebus.ReceivedMessage
	deadline, cancel := context.WithTimeout(t.Context(), delay+10*time.Second)
	defer cancel()
	for len(got) < 2 && deadline.Err() == nil {
		short, cancelShort := context.WithTimeout(deadline, delay+2*time.Second)
		m, _ := receiver.ReceiveMessages(short, 2, nil)
		cancelShort()
		if len(m) == 0 && len(got) > 0 {
			break // the duplicate never comes
		}
		got = append(got, m...)
	}
	if len(got) != 1 {
		t.Fatalf("received %d re-checks, want exactly 1 (the second send is a duplicate)", len(got))
	}
	if at := got[0].EnqueuedTime; at == nil || at.Before(gaveUp.Add(delay-100*time.Millisecond)) {
		t.Errorf("enqueued at %v, want no earlier than %s", at, gaveUp.Add(delay))
	}
	var body map[string]string
	if err := json.Unmarshal(got[0].Body, &body); err != nil || body["command"] != "reconcile" || body["principal"] != oid {
		t.Errorf("body %s, want a reconcile command for %s", got[0].Body, oid)
	}
}
