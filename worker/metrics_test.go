package worker_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	a := wt.TeamsUser(1)
	e := wt.NewEnv(a)
	bodies := [][]byte{wt.UserNote(a.ID), []byte("not json"), readFixture(t, "forged_clientstate.json")}
	w := e.Worker(t, worker.NewMemorySource(bodies, worker.FileOptions{}), worker.Options{})
	wt.RunToEnd(t, w)

	want := `
# HELP tpe_messages_total Queue messages settled, by outcome.
# TYPE tpe_messages_total counter
tpe_messages_total{outcome="completed"} 1
tpe_messages_total{outcome="dead_lettered"} 2
# HELP tpe_dead_letters_total Messages dead-lettered by the worker, by reason.
# TYPE tpe_dead_letters_total counter
tpe_dead_letters_total{reason="malformed"} 1
tpe_dead_letters_total{reason="untrusted"} 1
# HELP tpe_reconciles_total Principal reconciles, by action (error when one failed).
# TYPE tpe_reconciles_total counter
tpe_reconciles_total{action="grant"} 1
# HELP tpe_inflight_messages Messages being worked on now.
# TYPE tpe_inflight_messages gauge
tpe_inflight_messages 0
# HELP tpe_circuit_open 1 while a systemic fault has paused receiving.
# TYPE tpe_circuit_open gauge
tpe_circuit_open 0
`
	names := []string{"tpe_messages_total", "tpe_dead_letters_total", "tpe_reconciles_total", "tpe_inflight_messages", "tpe_circuit_open"}
	if err := testutil.GatherAndCompare(e.Reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(e.Reg, "tpe_reconcile_duration_seconds"); n != 1 {
		t.Errorf("tpe_reconcile_duration_seconds series = %d, want 1", n)
	}
}

func TestTwoWorkersShareOneRegistry(t *testing.T) {
	t.Parallel()
	e := wt.NewEnv()
	reg := prometheus.NewRegistry()
	e.Worker(t, worker.NewMemorySource(nil, worker.FileOptions{}), worker.Options{Registerer: reg})
	e.Worker(t, worker.NewMemorySource(nil, worker.FileOptions{}), worker.Options{Registerer: reg}) // must not panic
}

func TestHTTPMetricsCountRequestsWithoutIDs(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "missing") {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m := worker.NewHTTPMetrics(reg)
	acs := &http.Client{Transport: m.ACS(nil)}
	graph := &http.Client{Transport: m.Graph(http.DefaultTransport)}
	for _, req := range []struct {
		c      *http.Client
		method string
		path   string
	}{
		{acs, http.MethodGet, "/assignments/" + wt.OID(1)},
		{acs, http.MethodGet, "/assignments/missing"},
		{acs, http.MethodPut, "/assignments/" + wt.OID(1)},
		{graph, http.MethodGet, "/v1.0/users/" + wt.OID(1)},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := req.c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	closed := &http.Client{Transport: m.Graph(nil)}
	if _, err := closed.Get("http://127.0.0.1:1/unreachable"); err == nil {
		t.Fatal("request to a closed port succeeded")
	}

	want := `
# HELP tpe_acs_requests_total Requests to the ACS assignments API, by method and status.
# TYPE tpe_acs_requests_total counter
tpe_acs_requests_total{method="GET",status="200"} 1
tpe_acs_requests_total{method="GET",status="404"} 1
tpe_acs_requests_total{method="PUT",status="200"} 1
# HELP tpe_graph_requests_total Requests to Microsoft Graph, by status.
# TYPE tpe_graph_requests_total counter
tpe_graph_requests_total{status="200"} 1
tpe_graph_requests_total{status="error"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
