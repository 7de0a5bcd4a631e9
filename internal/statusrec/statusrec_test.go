package statusrec

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecorderKeepsTheFirstStatus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"explicit status", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot); w.WriteHeader(http.StatusOK) }, http.StatusTeapot},
		{"body without a status", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, http.StatusOK},
		{"nothing written", func(http.ResponseWriter) {}, 0},
	} {
		under := httptest.NewRecorder()
		rec := &Recorder{ResponseWriter: under}
		tc.write(rec)
		if rec.Status != tc.want {
			t.Errorf("%s: Status = %d, want %d", tc.name, rec.Status, tc.want)
		}
		if tc.want != 0 && under.Code != tc.want {
			t.Errorf("%s: the wrapped writer got %d, want %d", tc.name, under.Code, tc.want)
		}
	}
	// The emulators' reset faults hijack the connection through http.ResponseController,
	// which finds the connection by unwrapping.
	under := httptest.NewRecorder()
	if got := (&Recorder{ResponseWriter: under}).Unwrap(); got != under {
		t.Errorf("Unwrap() = %v, want the wrapped writer", got)
	}
}
