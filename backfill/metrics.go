package backfill

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpe-provisioner/tpe-provisioner/internal/promreg"
)

// backfillMetrics are the series of backfills and resyncs; counters only, no ids.
type backfillMetrics struct {
	resyncRuns *prometheus.CounterVec // tpe_resync_runs_total{outcome}
	brakeTrips prometheus.Counter     // tpe_revoke_brake_trips_total
	withheld   prometheus.Counter     // tpe_revokes_withheld_total
}

// Resync outcomes, the values of tpe_resync_runs_total's label.
const (
	resyncApplied  = "applied"  // the plan was applied (or was empty)
	resyncDryRun   = "dry_run"  // planned and logged, nothing written
	resyncBraked   = "braked"   // the revoke brake refused the plan: nothing applied
	resyncRefused  = "refused"  // the listing rules refused the scope listing: nothing planned
	resyncFailed   = "failed"   // an error stopped it, or some principals failed
	resyncCanceled = "canceled" // the process is stopping
)

func newBackfillMetrics(reg prometheus.Registerer) *backfillMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &backfillMetrics{
		resyncRuns: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tpe_resync_runs_total", Help: "Resyncs run inside the worker, by outcome.",
		}, []string{"outcome"})),
		brakeTrips: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tpe_revoke_brake_trips_total",
			Help: "Backfill or resync plans the revoke brake refused (in a dry run: would have refused).",
		})),
		withheld: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tpe_revokes_withheld_total",
			Help: "Revokes a tripped brake held back (none of its plan was applied).",
		})),
	}
}
