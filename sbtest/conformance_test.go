package sbtest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// TestOfficialJavaScriptClient drives the endpoint with @azure/service-bus (pinned in
// node/package.json), a client the endpoint was not written with, through
// node/test/conformance.test.js. Any failure there fails this test.
func TestOfficialJavaScriptClient(t *testing.T) {
	t.Parallel()
	const (
		lock          = 2 * time.Second
		maxDeliveries = 3
	)
	queues := []string{"send", "abandon", "deadletter", "maxdelivery", "renew", "expiry", "peek", "receivedelete", "duplicate", "schedule"}
	s := sbtest.Start(t, sbtest.Options{
		MoreQueues:         queues,
		LockDuration:       lock,
		MaxDeliveryCount:   maxDeliveries,
		DuplicateDetection: true,
	})
	runNodeTest(t, s, "conformance.test.js", time.Minute,
		"SBTEST_QUEUES="+strings.Join(queues, ","),
		fmt.Sprintf("SBTEST_LOCK_MS=%d", lock.Milliseconds()),
		fmt.Sprintf("SBTEST_MAX_DELIVERY_COUNT=%d", maxDeliveries))
}
