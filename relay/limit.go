package relay

import (
	"sync"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// tokenBucket limits a rate: it holds up to burst tokens, refilled at rate per second;
// each take spends one.
type tokenBucket struct {
	rate  float64
	burst float64
	clock worker.Clock

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, clock worker.Clock) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), clock: clock, tokens: float64(burst), last: clock.Now()}
}

// take spends a token and reports true, or reports false and how long until one is there.
func (b *tokenBucket) take() (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second)), false
}
