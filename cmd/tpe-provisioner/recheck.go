package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
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
	return servicebus.Recheck(s, recheckDelay), close, nil
}
