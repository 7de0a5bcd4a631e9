package main

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// jitter delays every request to the handler it wraps by a random extra before the handler
// runs (so, like the emulators' own latency, it widens the time between a client's call and
// the moment the emulator reads or changes its state). The extra is exponentially
// distributed with the given mean, cut at ten times the mean: most calls take a little
// longer, a few much longer, as calls to a busy service do. Draws come from a seeded
// generator; which request gets which draw depends on arrival order.
type jitter struct {
	mean time.Duration

	mu  sync.Mutex
	rng *rand.Rand
}

// newJitter returns a jitter of the given mean; 0 adds nothing.
func newJitter(mean time.Duration, seed int64) *jitter {
	return &jitter{mean: mean, rng: rand.New(rand.NewPCG(uint64(seed), 0x6a6974))}
}

// draw returns the next extra delay.
func (j *jitter) draw() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	d := time.Duration(j.rng.ExpFloat64() * float64(j.mean))
	return min(d, 10*j.mean)
}

func (j *jitter) wrap(next http.Handler) http.Handler {
	if j.mean <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(j.draw())
		defer t.Stop()
		select {
		case <-t.C:
			next.ServeHTTP(w, r)
		case <-r.Context().Done(): // the client gave up; nothing was read or changed
		}
	})
}
