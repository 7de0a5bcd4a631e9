// Package statusrec holds the one http.ResponseWriter wrapper that remembers the status a
// handler wrote, for the emulators' request logs and the bench's tracing handlers.
package statusrec

import "net/http"

// Recorder passes everything to ResponseWriter and remembers the first status written
// (200 when the handler writes a body without one; 0 until anything is written).
type Recorder struct {
	http.ResponseWriter
	Status int
}

// WriteHeader records code and passes it on.
func (w *Recorder) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records the implicit 200 and passes b on.
func (w *Recorder) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the emulators' reset faults
// hijack it).
func (w *Recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
