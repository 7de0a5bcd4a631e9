package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRegisterSharesTheSeries checks that a second registration of the same collector
// description returns the first collector, so counts from two users add up in one series.
func TestRegisterSharesTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "tpe_test_total", Help: "test"}
	a := Register(reg, prometheus.NewCounter(opts))
	b := Register(reg, prometheus.NewCounter(opts))
	if a != b {
		t.Fatal("the second registration returned a new collector, not the registered one")
	}
	defer func() {
		if recover() == nil {
			t.Error("a conflicting description did not panic")
		}
	}()
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "tpe_test_total", Help: "other"}))
}
