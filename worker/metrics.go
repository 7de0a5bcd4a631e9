package worker

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpe-provisioner/tpe-provisioner/internal/promreg"
)

// metrics are the worker's Prometheus series. No label holds an id or a secret: outcomes,
// actions and dead-letter reasons are small fixed sets.
type metrics struct {
	messages     *prometheus.CounterVec // tpe_messages_total{outcome}
	reconciles   *prometheus.CounterVec // tpe_reconciles_total{action}; action "error" for failures
	duration     prometheus.Histogram   // tpe_reconcile_duration_seconds
	inflight     prometheus.Gauge       // tpe_inflight_messages
	circuitOpen  prometheus.Gauge       // tpe_circuit_open
	deadLetters  *prometheus.CounterVec // tpe_dead_letters_total{reason}
	unclassified prometheus.Counter     // tpe_unclassified_errors_total
	fannedOut    prometheus.Counter     // tpe_fanned_out_principals_total
}

// actionError labels tpe_reconciles_total for a reconcile that returned an error.
const actionError = "error"

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &metrics{
		messages: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tpe_messages_total", Help: "Queue messages settled, by outcome.",
		}, []string{"outcome"})),
		reconciles: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tpe_reconciles_total", Help: "Principal reconciles, by action (error when one failed).",
		}, []string{"action"})),
		duration: promreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tpe_reconcile_duration_seconds", Help: "Time to reconcile one principal.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		})),
		inflight: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tpe_inflight_messages", Help: "Messages being worked on now.",
		})),
		circuitOpen: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tpe_circuit_open", Help: "1 while a systemic fault has paused receiving.",
		})),
		deadLetters: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tpe_dead_letters_total", Help: "Messages dead-lettered by the worker, by reason.",
		}, []string{"reason"})),
		unclassified: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tpe_unclassified_errors_total",
			Help: "Errors that said neither temporary, systemic nor permanent (treated as temporary); a bug to look at.",
		})),
		fannedOut: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tpe_fanned_out_principals_total",
			Help: "Members of large groups handed back to the queue as one reconcile command each.",
		})),
	}
}

// HTTPMetrics counts outgoing requests to ACS and Graph. Wrap each client's transport:
//
//	m := worker.NewHTTPMetrics(reg)
//	acsHTTP := &http.Client{Transport: m.ACS(http.DefaultTransport)}
//
// Series: tpe_acs_requests_total{method,status} and tpe_graph_requests_total{status}, where
// status is the HTTP status code or "error" when no response came back. URLs are never
// recorded (they hold object ids).
type HTTPMetrics struct {
	acs   *prometheus.CounterVec
	graph *prometheus.CounterVec
}

// NewHTTPMetrics registers the request counters on reg (nil: a private registry).
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &HTTPMetrics{
		acs: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tpe_acs_requests_total", Help: "Requests to the ACS assignments API, by method and status.",
		}, []string{"method", "status"})),
		graph: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tpe_graph_requests_total", Help: "Requests to Microsoft Graph, by status.",
		}, []string{"status"})),
	}
}

// ACS returns next wrapped so each request is counted in tpe_acs_requests_total.
func (m *HTTPMetrics) ACS(next http.RoundTripper) http.RoundTripper {
	return countingTransport{next: orDefault(next), count: func(r *http.Request, status string) {
		m.acs.WithLabelValues(r.Method, status).Inc()
	}}
}

// Graph returns next wrapped so each request is counted in tpe_graph_requests_total.
func (m *HTTPMetrics) Graph(next http.RoundTripper) http.RoundTripper {
	return countingTransport{next: orDefault(next), count: func(_ *http.Request, status string) {
		m.graph.WithLabelValues(status).Inc()
	}}
}

type countingTransport struct {
	next  http.RoundTripper
	count func(r *http.Request, status string)
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.count(r, status)
	return resp, err
}

func orDefault(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}
