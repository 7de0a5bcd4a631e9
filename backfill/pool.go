package backfill

import (
	"context"
	"sync"
)

// runPool runs work on every item of in with n goroutines and hands each output to
// collect on the calling goroutine. When collect returns an error the run is cancelled
// with it as the cause; the items left are drained without work.
func runPool[I, O any](ctx context.Context, cancel context.CancelCauseFunc, n int, in <-chan I,
	work func(I) O, collect func(O) error) {
	out := make(chan O, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for item := range in {
				if ctx.Err() == nil {
					out <- work(item)
				}
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	for o := range out {
		if ctx.Err() != nil {
			continue
		}
		if err := collect(o); err != nil {
			cancel(err)
		}
	}
}

// feed streams rows on a channel until they are all sent or ctx ends.
func feed(ctx context.Context, rows []PlanRow) <-chan PlanRow {
	ch := make(chan PlanRow)
	go func() {
		defer close(ch)
		for _, r := range rows {
			select {
			case ch <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}
