package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// service is what run, backfill and demo share: the clients behind the worker's
// interfaces, the policy, the reconciler and the metrics registry.
type service struct {
	cfg   *Config
	log   *slog.Logger
	reg   *prometheus.Registry
	acs   *acs.Client
	graph *graph.Client
	dir   adapt.Graph
	store adapt.ACS
	rec   *worker.Reconciler
}

// newService builds the clients. wrap, when set, decorates both clients' transports after
// the request metrics (the backfill's adaptive limiter).
func newService(c *Config, log *slog.Logger, wrap transportWrap) (*service, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newBuildInfo())
	m := worker.NewHTTPMetrics(reg)
	ac, err := newACSClient(c, log, func(rt http.RoundTripper) http.RoundTripper { return m.ACS(wrap.apply(rt)) })
	if err != nil {
		return nil, fmt.Errorf("ACS client: %w", err)
	}
	gc, err := newGraphClient(c, log, func(rt http.RoundTripper) http.RoundTripper { return m.Graph(wrap.apply(rt)) })
	if err != nil {
		return nil, fmt.Errorf("Graph client: %w", err)
	}
	s := &service{cfg: c, log: log, reg: reg, acs: ac, graph: gc,
		dir: adapt.Graph{Client: gc}, store: adapt.ACS{Client: ac, Tenant: c.TenantID}}
	s.rec = worker.NewReconciler(s.dir, s.store, s.policy(), worker.ReconcilerOptions{DryRun: c.DryRun})
	return s, nil
}

func (s *service) policy() worker.Policy {
	return worker.Policy{
		ClientIDs:              s.cfg.ClientIDs,
		ScopeGroups:            s.cfg.ScopeGroups,
		AllowGuests:            s.cfg.AllowGuests,
		ManageResourceAccounts: s.cfg.ManageResourceAccounts,
	}
}

// probeObjectID names no principal: reading it answers 404 when our credentials work.
const probeObjectID = "00000000-0000-0000-0000-000000000000"

// probe tells whether a systemic fault is gone by making, harmlessly, the calls the worker
// makes: an ACS assignment read, a Graph user read with the reconcile's $select, and, with
// scope groups, a checkMemberGroups on the first of them (each for a principal that does
// not exist, so 404 is a pass). What it cannot make harmlessly (an ACS PUT or DELETE) is
// tried by the worker itself: the message that hit the fault is retried as the probe's
// last step (worker/circuit.go).
func (s *service) probe(ctx context.Context) error {
	if _, err := s.acs.Get(ctx, s.cfg.TenantID, probeObjectID); err != nil && !acs.IsNotFound(err) {
		return fmt.Errorf("ACS probe (read an assignment): %w", err)
	}
	if _, err := s.graph.User(ctx, probeObjectID); err != nil && !worker.IsNotFound(err) {
		return fmt.Errorf("Graph probe (read a user): %w", err)
	}
	if len(s.cfg.ScopeGroups) > 0 {
		if _, err := s.graph.MemberOf(ctx, probeObjectID, s.cfg.ScopeGroups[:1]); err != nil && !worker.IsNotFound(err) {
			return fmt.Errorf("Graph probe (checkMemberGroups): %w", err)
		}
	}
	return nil
}

// backfillOptions are the settings a backfill or a resync shares.
func (s *service) backfillOptions() backfill.Options {
	return backfill.Options{
		Reconciler:       s.rec,
		Enumerator:       s.dir,
		Concurrency:      s.cfg.Concurrency,
		DryRun:           s.cfg.DryRun,
		MaxRevokes:       s.cfg.MaxRevokes,
		MaxRevokePercent: brakePercent(s.cfg.MaxRevokePercent),
		SweepOutOfScope:  s.cfg.SweepOutOfScope,
		Logger:           s.log,
		Registerer:       s.reg,
		DirectoryStats: func() backfill.DirectoryStats {
			return backfill.DirectoryStats{Pages: s.graph.Pages(), Calls: s.graph.Calls()}
		},
	}
}

// closeQuietly closes c and logs a failure once.
func closeQuietly(log *slog.Logger, what string, c io.Closer) {
	if err := c.Close(); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("close failed", "what", what, "error", err)
	}
}
