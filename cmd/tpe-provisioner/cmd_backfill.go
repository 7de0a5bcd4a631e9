package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/internal/limiter"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

func init() {
	commands["backfill"] = command{
		summary: "reconcile the whole scope: plan (--dry-run), apply, or --enqueue the changes for every replica",
		exits:   []exitCode{{3, "the revoke brake refused the plan: nothing was applied (review it, then --force)"}},
		run:     runBackfill,
	}
}

// backfillConcurrency is the backfill's default: it runs alone, so it may use more than a
// replica of run does.
const backfillConcurrency = 32

func runBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	output := outputFormatFlag(fs, "table")
	force := fs.Bool("force", false, "apply revokes even when the brake trips")
	enqueue := fs.Bool("enqueue", false, "send one reconcile command per planned change to SERVICEBUS_QUEUE instead of writing to ACS")
	showNoops := fs.Bool("show-noops", false, "print rows that need no change too")
	if err := c.bindGroups(fs, environ, groupACS, groupTenant, groupGraph, groupPolicy, groupWork, groupBrake,
		groupLog, groupQueue); err != nil {
		return err
	}
	if environ("TPE_CONCURRENCY") == "" {
		c.Concurrency = backfillConcurrency
		fs.Lookup("concurrency").DefValue = strconv.Itoa(backfillConcurrency)
	}
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	if err := c.Validate(needs{acs: true, clientIDs: true, graph: true, source: *enqueue}); err != nil {
		return err
	}
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	lim := limiter.New(1, c.Concurrency)
	svc, err := newService(&c, log, lim.Transport)
	if err != nil {
		return err
	}
	if err := checkScopeGroups(ctx, svc); err != nil {
		return err
	}
	o := svc.backfillOptions()
	o.Force, o.ShowNoops, o.Limiter = *force, *showNoops, lim
	o.Progress, o.IsTerminal = stderr, isTerminal(stderr)
	o.Out = backfill.PlanWriter(backfill.NewPlanTable(stdout))
	var doc *backfill.PlanJSON
	if *output == "json" {
		doc = backfill.NewPlanJSON(stdout)
		o.Out = doc
	}
	if *enqueue {
		send, closeSender, err := queueSender(ctx, &c)
		if err != nil {
			return err
		}
		defer closeSender()
		o.Enqueue = send
	}
	sum, err := backfill.Run(ctx, o)
	if doc != nil {
		err = errors.Join(err, doc.Close())
	}
	log.LogAttrs(ctx, levelOf(err), "backfill finished", sum.LogAttrs()...)
	switch {
	case errors.Is(err, backfill.ErrBrake):
		return &exitError{code: 3, err: fmt.Errorf("%w: nothing was applied (no grant, no revoke); review the plan, then rerun with --force or raise --max-revokes/--max-revoke-percent", err)}
	case err != nil:
		return err
	}
	return nil
}

// checkScopeGroups stops a start whose TPE_SCOPE_GROUPS names a group the directory does
// not hold: every membership check against it would say "not a member", so every notified
// user would be revoked as out of scope.
func checkScopeGroups(ctx context.Context, svc *service) error {
	if err := backfill.CheckScopeGroups(ctx, svc.dir, svc.cfg.ScopeGroups); err != nil {
		return fmt.Errorf("TPE_SCOPE_GROUPS: %w (check the group ids and that the app may read them)", err)
	}
	return nil
}

// brakePercent maps TPE_MAX_REVOKE_PERCENT to backfill.Options.MaxRevokePercent:
// the setting's 0 turns the percentage rule off, which the option spells negative (its 0
// means the default).
func brakePercent(setting float64) float64 {
	if setting == 0 {
		return -1
	}
	return setting
}

func levelOf(err error) slog.Level {
	if err != nil {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// isTerminal reports whether w is a character device other than the null device (a person
// is watching).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// queueSender returns an Enqueue function that sends reconcile commands to the queue in
// message batches. Message ids carry a per-run id, so a rerun is not mistaken for a
// duplicate by the queue's duplicate detection while a retry within the run is.
func queueSender(ctx context.Context, c *Config) (func(context.Context, []worker.Target) error, func(), error) {
	sender, closeSender, err := openSender(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	run := make([]byte, 6)
	_, _ = rand.Read(run)
	runID := hex.EncodeToString(run)
	return func(ctx context.Context, targets []worker.Target) error {
		return servicebus.SendCommands(ctx, sender, "backfill-"+runID+"-", targets)
	}, closeSender, nil
}
