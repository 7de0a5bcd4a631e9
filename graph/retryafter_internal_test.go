package graph

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"10", 10 * time.Second},
		{"2.128", 2128 * time.Millisecond}, // the throttling guidance's sample
		{"0.4", 400 * time.Millisecond},
		{"0.0001", time.Millisecond}, // rounded up, never to zero
		{" 3 ", 3 * time.Second},
		{"0", 0},
		{"-1", 0},
		{"NaN", 0},
		{"Inf", 0},
		{"1e3", 0}, // not delta-seconds
		{"0x10", 0},
		{"1_0", 0},
		{"99999999999999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
