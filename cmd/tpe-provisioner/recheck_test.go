package main

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
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
	if err := queueRecheck(s, recheckDelay)(context.Background(), worker.Target{Principal: oid, Command: worker.CommandReconcile}, gaveUp); err != nil {
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
	err := queueRecheck(s, recheckDelay)(context.Background(), worker.Target{Principal: oid}, gaveUp)
	if !worker.IsSystemic(err) {
		t.Errorf("unauthorized send: error %v, want systemic", err)
	}
	s.err = errors.New("link detached")
	if err := queueRecheck(s, recheckDelay)(context.Background(), worker.Target{Principal: oid}, gaveUp); !worker.IsTemporary(err) {
		t.Errorf("failed send: error %v, want temporary", err)
	}
}
