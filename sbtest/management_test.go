package sbtest_test

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// A message without its AMQP delivery (as after its link is gone) is settled through the
// $management node's update-disposition by lock token.
func TestSettleOnManagementLink(t *testing.T) {
	t.Parallel()
	reason, description := "untrusted", "clientState does not match"
	tests := []struct {
		name   string
		settle func(r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error
		want   sbtest.Stats
	}{
		{"complete", func(r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
			return r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil)
		}, sbtest.Stats{Completed: 1, Deliveries: 1}},
		{"abandon", func(r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
			return r.AbandonMessage(ctxFor(t, 5*time.Second), m, nil)
		}, sbtest.Stats{Active: 1, Deliveries: 1}},
		{"dead-letter", func(r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
			return r.DeadLetterMessage(ctxFor(t, 5*time.Second), m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &description})
		}, sbtest.Stats{DeadLettered: 1, Deliveries: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sbtest.Start(t, sbtest.Options{})
			c := newClient(t, s.ConnectionString())
			send(t, newSender(t, c, s.Queue()), "m1", "x")
			r := newReceiver(t, c, s.Queue(), 0)
			m := receiveN(t, r, 1, 10*time.Second)[0]

			detached := *m
			detached.RawAMQPMessage = nil // the client then settles on $management
			if err := tt.settle(r, &detached); err != nil {
				t.Fatalf("settle on $management: %v", err)
			}
			waitStats(t, s, tt.want, 5*time.Second)
			if err := r.CompleteMessage(ctxFor(t, 5*time.Second), &detached, nil); code(err) != azservicebus.CodeLockLost {
				t.Fatalf("second settlement: %v, want code %s", err, azservicebus.CodeLockLost)
			}
			if tt.name != "dead-letter" {
				return
			}
			d := receiveN(t, newReceiver(t, c, s.Queue(), azservicebus.SubQueueDeadLetter), 1, 10*time.Second)[0]
			if d.DeadLetterReason == nil || *d.DeadLetterReason != reason || d.DeadLetterErrorDescription == nil || *d.DeadLetterErrorDescription != description {
				t.Fatalf("dead-letter reason/description = %v/%v, want %q/%q", d.DeadLetterReason, d.DeadLetterErrorDescription, reason, description)
			}
		})
	}
}

// A client whose reply links carry only a name (the JS client's $cbs and $management reply
// receivers) logs in and gets $management answers with statusCode, as the request/response
// operations are documented.
func TestReplyLinksByNameAndManagementStatusCode(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	runNodeTest(t, s, "management.test.js", 30*time.Second)
}
