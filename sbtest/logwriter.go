package sbtest

import (
	"bytes"
	"io"
	"sync"
)

// lineWriter passes whole lines to w, one Write per line and each with its line break, so
// a testing.TB logger gets one entry per event and a plain writer (a file, a terminal)
// keeps the lines apart.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.buf[:i+1]
		l.buf = l.buf[i+1:]
		if _, err := l.w.Write(line); err != nil {
			return len(p), err
		}
	}
}
