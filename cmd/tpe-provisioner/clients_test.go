package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Under the configured concurrency the clients' transport reuses its connections: a second
// wave of concurrent calls opens none. (http.DefaultTransport keeps two idle connections
// per host, so it would reopen all but two.)
func TestTransportKeepsAConnectionPerConcurrentCall(t *testing.T) {
	t.Parallel()
	const concurrency = 16
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(20 * time.Millisecond) // long enough for every call of a wave to overlap
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	client := &http.Client{Transport: newTransport(&Config{Concurrency: concurrency})}
	wave := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range concurrency {
			wg.Go(func() {
				<-start
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		close(start)
		wg.Wait()
	}
	wave()
	// A connection goes back to the idle pool from the transport's read loop, just after
	// its body was read: give the last ones a moment.
	time.Sleep(100 * time.Millisecond)
	first := opened.Load()
	wave()
	if again := opened.Load() - first; again != 0 {
		t.Errorf("the second wave of %d concurrent calls opened %d new connections, want 0 (the first opened %d)", concurrency, again, first)
	}
}
