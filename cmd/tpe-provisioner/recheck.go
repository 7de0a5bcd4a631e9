package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// recheckDelay is how long after a write was given up its principal is looked at again:
// longer than a PUT's whole retry budget with the ACS client's defaults (DefaultMaxRetries+1
// tries of at most DefaultTryTimeout each, with waits of at most DefaultMaxThrottleWait
// between them: 10.5 min), plus a minute, so that any try still in flight when the client
// gave up has long been applied or dropped by the service before the re-check reads.
const recheckDelay = time.Duration(acs.DefaultMaxRetries+1)*acs.DefaultTryTimeout +
	time.Duration(acs.DefaultMaxRetries)*acs.DefaultMaxThrottleWait + time.Minute

// recheckFunc is worker.Options.Recheck.
type recheckFunc = func(ctx context.Context, t worker.Target, gaveUp time.Time) error

// scheduledSender is what a re-check needs of *azservicebus.Sender.
type scheduledSender interface {
	SendMessage(ctx context.Context, m *azservicebus.Message, o *azservicebus.SendMessageOptions) error
}

var _ scheduledSender = (*azservicebus.Sender)(nil)

// openRecheck opens the sender of the worker's re-checks on the configured queue (none for a
// file source: a replay has no queue). close releases it.
func openRecheck(ctx context.Context, c *Config, source string) (recheck recheckFunc, close func(), err error) {
	if source != "" {
		return nil, func() {}, nil
	}
	s, close, err := openSender(ctx, c)
	if err != nil {
		return nil, nil, fmt.Errorf("re-check sender: %w", err)
	}
	return queueRecheck(s, recheckDelay), close, nil
}

// queueRecheck sends a reconcile command for the target to the queue, scheduled (the
// message's ScheduledEnqueueTime) delay after gaveUp: the broker holds it until then, so the
// re-check reads the directory and ACS well after any write the ACS client gave up on could
// still have landed. The message id names the principal and the moment, so a second send of
// the same re-check is dropped by the queue's duplicate detection.
func queueRecheck(s scheduledSender, delay time.Duration) recheckFunc {
	return func(ctx context.Context, t worker.Target, gaveUp time.Time) error {
		body, err := json.Marshal(map[string]string{"command": string(worker.CommandReconcile), "principal": t.Principal})
		if err != nil {
			return err
		}
		id := fmt.Sprintf("recheck-%s-%d", t.Principal, gaveUp.UnixMilli())
		at := gaveUp.Add(delay).UTC()
		err = s.SendMessage(ctx, &azservicebus.Message{Body: body, MessageID: &id, ContentType: ptr("application/json"),
			ScheduledEnqueueTime: &at}, nil)
		if err == nil {
			return nil
		}
		var sbErr *azservicebus.Error
		systemic := errors.As(err, &sbErr) &&
			(sbErr.Code == azservicebus.CodeUnauthorizedAccess || sbErr.Code == azservicebus.CodeConnectionLost)
		return &sendError{err: fmt.Errorf("schedule re-check: %w", err), systemic: systemic}
	}
}
