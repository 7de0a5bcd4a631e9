package sbtest

import (
	"bytes"
	"testing"
)

// recorder keeps every Write as one entry.
type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestLineWriterPassesWholeLinesWithTheirBreaks(t *testing.T) {
	var rec recorder
	w := newLineWriter(&rec)
	for _, chunk := range []string{"first li", "ne\nsecond\nthi", "rd", "\n", "unfinished"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	want := []string{"first line\n", "second\n", "third\n"}
	if len(rec.writes) != len(want) {
		t.Fatalf("writes = %q, want %q", rec.writes, want)
	}
	for i := range want {
		if rec.writes[i] != want[i] {
			t.Fatalf("writes = %q, want %q", rec.writes, want)
		}
	}

	// Into a plain buffer (the emulate command's log), lines stay apart.
	var buf bytes.Buffer
	w = newLineWriter(&buf)
	_, _ = w.Write([]byte("a\nb\n"))
	if buf.String() != "a\nb\n" {
		t.Fatalf("buffer = %q, want %q", buf.String(), "a\nb\n")
	}
}
