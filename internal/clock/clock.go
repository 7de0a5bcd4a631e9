// Package clock is the one clock convention of the packages around the worker: a Clock
// (Now and After) given in options, System by default, and Fake for tests (fake.go), whose
// time moves only when the test moves it.
package clock

import "time"

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// System is the real clock.
type System struct{}

func (System) Now() time.Time                         { return time.Now() }
func (System) After(d time.Duration) <-chan time.Time { return time.After(d) }
