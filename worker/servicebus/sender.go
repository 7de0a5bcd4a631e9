package servicebus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// MessageSender is the part of *azservicebus.Sender that sends one message.
type MessageSender interface {
	SendMessage(ctx context.Context, m *azservicebus.Message, o *azservicebus.SendMessageOptions) error
}

// BatchSender is the part of *azservicebus.Sender that sends message batches.
type BatchSender interface {
	NewMessageBatch(ctx context.Context, o *azservicebus.MessageBatchOptions) (*azservicebus.MessageBatch, error)
	SendMessageBatch(ctx context.Context, b *azservicebus.MessageBatch, o *azservicebus.SendMessageBatchOptions) error
}

var (
	_ MessageSender = (*azservicebus.Sender)(nil)
	_ BatchSender   = (*azservicebus.Sender)(nil)
)

const contentJSON = "application/json"

// message is a JSON message with the given id.
func message(body []byte, id string) *azservicebus.Message {
	ct := contentJSON
	return &azservicebus.Message{Body: body, MessageID: &id, ContentType: &ct}
}

// Send sends one JSON message as it is (the relay's notifications, the enqueue command's
// lines). The error is the SDK's, unclassified.
func Send(ctx context.Context, s MessageSender, body []byte, messageID string) error {
	return s.SendMessage(ctx, message(body, messageID), nil)
}

// SendCommands sends one reconcile command per target (worker.EncodeCommand, with the
// target's principal type hint), in as few message batches as fit; each message id is
// idPrefix followed by the principal.
func SendCommands(ctx context.Context, s BatchSender, idPrefix string, targets []worker.Target) error {
	batch, err := s.NewMessageBatch(ctx, nil)
	if err != nil {
		return fmt.Errorf("new message batch: %w", err)
	}
	for _, t := range targets {
		msg := message(worker.EncodeCommand(worker.CommandReconcile, t.Principal, t.Type), idPrefix+t.Principal)
		err := batch.AddMessage(msg, nil)
		if errors.Is(err, azservicebus.ErrMessageTooLarge) {
			if err := s.SendMessageBatch(ctx, batch, nil); err != nil {
				return fmt.Errorf("send batch: %w", err)
			}
			if batch, err = s.NewMessageBatch(ctx, nil); err != nil {
				return fmt.Errorf("new message batch: %w", err)
			}
			err = batch.AddMessage(msg, nil)
		}
		if err != nil {
			return fmt.Errorf("add message: %w", err)
		}
	}
	if batch.NumMessages() == 0 {
		return nil
	}
	if err := s.SendMessageBatch(ctx, batch, nil); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	return nil
}

// FanOut is worker.Options.FanOut over s: it sends a large group's members back to the
// queue as reconcile commands. The message ids are "group-" + a hash of the worker's key +
// "-" + the principal: the same for a redelivery of the same notification, so the queue's
// duplicate detection drops a second hand-over, and different for the next notification of
// the group. Errors are classified (errors.go).
func FanOut(s BatchSender) func(ctx context.Context, key string, targets []worker.Target) error {
	return func(ctx context.Context, key string, targets []worker.Target) error {
		sum := sha256.Sum256([]byte(key))
		return classifySend(SendCommands(ctx, s, "group-"+hex.EncodeToString(sum[:8])+"-", targets))
	}
}

// Recheck is worker.Options.Recheck over s: it sends a reconcile command for the target,
// scheduled (the message's ScheduledEnqueueTime) delay after gaveUp: the broker holds it
// until then, so the re-check reads the directory and ACS well after any write the ACS
// client gave up on could still have landed. The message id names the principal and the
// moment, so a second send of the same re-check is dropped by the queue's duplicate
// detection. Errors are classified (errors.go).
func Recheck(s MessageSender, delay time.Duration) func(ctx context.Context, t worker.Target, gaveUp time.Time) error {
	return func(ctx context.Context, t worker.Target, gaveUp time.Time) error {
		msg := message(worker.EncodeCommand(worker.CommandReconcile, t.Principal, t.Type),
			fmt.Sprintf("recheck-%s-%d", t.Principal, gaveUp.UnixMilli()))
		at := gaveUp.Add(delay).UTC()
		msg.ScheduledEnqueueTime = &at
		if err := s.SendMessage(ctx, msg, nil); err != nil {
			return classifySend(fmt.Errorf("schedule re-check: %w", err))
		}
		return nil
	}
}
