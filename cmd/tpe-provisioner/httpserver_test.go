package main

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// A client that opens a connection and sends its headers slowly, or idles, is cut off: the
// ops server and the relay set every server timeout.
func TestServersSetEveryTimeout(t *testing.T) {
	srv := newServer(http.NotFoundHandler())
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout,
		"ReadTimeout": srv.ReadTimeout, "WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if d <= 0 || d > 2*time.Minute {
			t.Errorf("%s = %s, want a bound of at most 2m", name, d)
		}
	}
	if srv.ReadTimeout >= writeTimeout {
		t.Errorf("ReadTimeout %s must leave the handler time to answer within WriteTimeout %s", srv.ReadTimeout, writeTimeout)
	}

	// And they work: a connection that never finishes its headers is closed.
	srv.ReadHeaderTimeout = 100 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // headers never end
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		// The server may answer 408 before closing; either way it did not wait forever.
		return
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a connection whose headers never ended")
	}
}
