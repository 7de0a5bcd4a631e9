package sbtest_test

import (
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

func TestSmoke(t *testing.T) {
	s := sbtest.Start(t, sbtest.Options{LockDuration: 2 * time.Second})
	c := newClient(t, s.ConnectionString())
	send(t, newSender(t, c, s.Queue()), "m1", "hello")
	r := newReceiver(t, c, s.Queue(), 0)
	got := receiveN(t, r, 1, 10*time.Second)
	t.Logf("%+v", got[0])
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), got[0], nil); err != nil {
		t.Fatal(err)
	}
	waitStats(t, s, sbtest.Stats{Completed: 1}, 2*time.Second)
}
