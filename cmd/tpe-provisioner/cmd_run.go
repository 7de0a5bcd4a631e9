package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/subscriptions"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

func init() {
	commands["run"] = command{
		summary: "consume the queue (or --source file:PATH) and keep assignments in step with the directory",
		detail:  "The first SIGINT/SIGTERM drains: stop receiving, let in-flight messages finish within\nTPE_SHUTDOWN_TIMEOUT; a second one exits at once.",
		exits:   []exitCode{{130, "a second SIGINT/SIGTERM ended the drain at once"}},
		run:     runRun,
	}
}

// runGroups are the settings run reads: the reconcile (ACS, Graph, policy), the
// notifications' trust, the loop, the resync's brake, and the queue and subscriptions.
var runGroups = []settingGroup{groupACS, groupTenant, groupGraph, groupPolicy, groupTrust, groupWork, groupBrake,
	groupOps, groupLog, groupQueue, groupSubscriptions}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	source := fs.String("source", "", "read messages from `file:PATH` (JSON Lines, - for stdin) instead of Service Bus")
	if err := c.bindGroups(fs, environ, runGroups...); err != nil {
		return err
	}
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	if err := c.Validate(needs{acs: true, clientIDs: true, graph: true, source: *source == "", clientState: true}); err != nil {
		return err
	}
	if *source != "" && settingSource(fs, "TPE_HTTP_LISTEN") == "default" {
		c.HTTPListen = "off" // a one-shot replay serves no ops port unless asked for one
	}
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	svc, err := newService(&c, log, nil)
	if err != nil {
		return err
	}
	if err := checkScopeGroups(ctx, svc); err != nil {
		return err
	}
	src, fanOut, finish, err := openSource(ctx, &c, *source, log)
	if err != nil {
		return err
	}
	defer finish()
	recheck, closeRecheck, err := openRecheck(ctx, &c, *source)
	if err != nil {
		return err
	}
	defer closeRecheck()

	var bg sync.WaitGroup
	defer bg.Wait()
	stopping := ctx // cancelled by the first signal: the drain starts
	ctx, cancelBG := context.WithCancel(ctx)
	defer cancelBG()

	resync := startResync(ctx, &bg, svc, *source != "")
	lifecycle, err := startKeeper(ctx, &bg, svc, resync)
	if err != nil {
		return err
	}
	w, err := worker.New(src, svc.rec, svc.dir, worker.Options{
		Concurrency:    c.Concurrency,
		MessageTimeout: c.MessageTimeout,
		DrainTimeout:   c.ShutdownTimeout,
		Trust:          worker.Trust{TenantID: c.TenantID, ClientState: c.ClientState, QueueOverrides: c.QueueOverrides},
		Logger:         log,
		Registerer:     svc.reg,
		Lifecycle:      lifecycle,
		Probe:          svc.probe,
		FanOut:         fanOut,
		Recheck:        recheck,
	})
	if err != nil {
		return err
	}
	stopOps, err := serveOps(ctx, c.HTTPListen, opsHandler(svc.reg, w), log)
	if err != nil {
		return fmt.Errorf("TPE_HTTP_LISTEN %s: %w", c.HTTPListen, err)
	}
	defer stopOps()

	log.Info("worker started", "concurrency", c.Concurrency, "dry_run", c.DryRun, "scope_groups", len(c.ScopeGroups),
		"resync_interval", c.ResyncInterval.String(), "renew_subscriptions", c.RenewSubscriptions, "source", sourceName(&c, *source), "build", currentBuild())
	drainStarted := make(chan time.Time, 1)
	watchDrain := context.AfterFunc(stopping, func() {
		t0 := time.Now()
		log.Info("draining", "in_flight", inFlight(svc.reg), "drain_timeout", c.ShutdownTimeout,
			"detail", "stopped receiving; waiting for the in-flight messages to finish")
		drainStarted <- t0 // after the line, so "stopped" follows it
	})
	started := time.Now()
	err = w.Run(ctx)
	attrs := []any{"uptime", time.Since(started).Round(time.Millisecond), "messages", messagesSettled(w.Stats())}
	if !watchDrain() {
		attrs = append(attrs, "drain_took", time.Since(<-drainStarted).Round(time.Microsecond))
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	log.Info("stopped", attrs...)
	printStats(stdout, w.Stats())
	return err
}

// inFlight reads the worker's tpe_inflight_messages gauge from reg (-1 when absent).
func inFlight(reg prometheus.Gatherer) int {
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "tpe_inflight_messages" && len(f.GetMetric()) == 1 {
			return int(f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return -1
}

func messagesSettled(s worker.Stats) int {
	n := 0
	for _, c := range s.Messages {
		n += c
	}
	return n
}

func sourceName(c *Config, source string) string {
	if source != "" {
		return source
	}
	return "servicebus:" + c.ServiceBusQueue
}

// openSource opens the file source or the Service Bus queue. With the queue it also
// returns the worker's FanOut, which sends reconcile commands back to the same queue (nil
// for a file: a replay has no queue to share work through).
func openSource(ctx context.Context, c *Config, source string, log *slog.Logger) (worker.Source, fanOutFunc, func(), error) {
	if source != "" {
		path, ok := strings.CutPrefix(source, "file:")
		if !ok || path == "" {
			return nil, nil, nil, fmt.Errorf("--source %q: want file:PATH (or file:- for stdin)", source)
		}
		in, dlPath := io.Reader(os.Stdin), "stdin.deadletter.jsonl"
		closeIn := func() {}
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return nil, nil, nil, err
			}
			in, dlPath, closeIn = f, path+".deadletter.jsonl", func() { _ = f.Close() }
		}
		dl := worker.NewDeadLetterFile(dlPath) // appended to, opened by the first dead letter
		log.Info("reading messages from a file", "path", path, "dead_letters", dlPath)
		return worker.NewFileSource(in, dl, worker.FileOptions{}), nil, func() { closeIn(); _ = dl.Close() }, nil
	}
	src, sender, closeAll, err := servicebus.OpenSourceAndSender(ctx, sbConfig(c), servicebus.Options{Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	return src, servicebus.FanOut(sender), closeAll, nil
}

// fanOutFunc is worker.Options.FanOut.
type fanOutFunc = func(ctx context.Context, key string, targets []worker.Target) error

// sbConfig is the Service Bus part of the settings.
func sbConfig(c *Config) servicebus.Config {
	return servicebus.Config{ConnectionString: c.ServiceBusConnectionString, Namespace: c.ServiceBusNamespace, Queue: c.ServiceBusQueue}
}

// openSender opens a sender on the configured queue; close releases it and its client.
func openSender(ctx context.Context, c *Config) (*azservicebus.Sender, func(), error) {
	return servicebus.OpenSender(ctx, sbConfig(c))
}

// startResync runs the resync in the background (not for a file replay): every
// TPE_RESYNC_INTERVAL, and whenever a lifecycle event says notifications were lost. With
// the interval 0 (replicas whose schedule is a job) only the second remains: the event
// reaches one replica, which resyncs at once rather than at the job's next run.
func startResync(ctx context.Context, bg *sync.WaitGroup, svc *service, replay bool) *backfill.Resyncer {
	if replay {
		return nil
	}
	r := backfill.NewResyncer(max(svc.cfg.ResyncInterval, 0), svc.backfillOptions())
	bg.Add(1)
	go func() { defer bg.Done(); r.Run(ctx) }()
	return r
}

// startKeeper keeps the Graph subscriptions alive when a notification target is configured,
// and returns the lifecycle handler for the worker.
func startKeeper(ctx context.Context, bg *sync.WaitGroup, svc *service, resync *backfill.Resyncer) (worker.LifecycleHandler, error) {
	trigger := func() {}
	if resync != nil {
		trigger = resync.Trigger
	}
	target, err := notificationURL(svc.cfg)
	if err != nil || target == "" {
		return resyncOnLifecycle{log: svc.log, trigger: trigger}, err
	}
	k, err := subscriptions.NewKeeper(adapt.Subscriptions{Client: svc.graph}, subscriptions.KeeperOptions{
		Resources:       subscriptions.SubscriptionResources(svc.cfg.ScopeGroups),
		NotificationURL: target,
		ClientState:     svc.cfg.ClientState,
		Logger:          svc.log,
		Resync:          trigger,
		Registerer:      svc.reg,
	})
	if err != nil {
		return nil, err
	}
	if !svc.cfg.RenewSubscriptions {
		return k, nil // a scheduled `subscribe` renews; the keeper still answers lifecycle events
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := k.Run(ctx); err != nil && ctx.Err() == nil {
			svc.log.Error("subscription keeper stopped", "error", err)
		}
	}()
	return k, nil
}

// notificationURL is where Graph posts: the Event Grid partner topic or the relay.
func notificationURL(c *Config) (string, error) {
	switch {
	case c.EventGrid != "":
		return subscriptions.EventGridURL(c.EventGrid)
	case c.WebhookURL != "":
		if !strings.HasPrefix(c.WebhookURL, "https://") {
			return "", fmt.Errorf("TPE_WEBHOOK_URL must be an https URL Graph can reach")
		}
		return c.WebhookURL, nil
	}
	return "", nil
}

// resyncOnLifecycle answers lifecycle events when this process keeps no subscriptions:
// notifications may have been lost, so reconcile the scope.
type resyncOnLifecycle struct {
	log     *slog.Logger
	trigger func()
}

func (r resyncOnLifecycle) HandleLifecycle(_ context.Context, ev worker.LifecycleEvent) error {
	r.log.Warn("subscription lifecycle event, but no notification target is configured here: triggering a resync",
		"subscription_id", ev.SubscriptionID, "lifecycle_event", ev.Event)
	r.trigger()
	return nil
}

func printStats(w io.Writer, s worker.Stats) {
	fmt.Fprintf(w, "messages: completed=%d dead_lettered=%d abandoned=%d  reconciles: grant=%d revoke=%d noop=%d skip=%d errors=%d coalesced=%d\n",
		s.Messages[worker.Outcome("completed")], s.Messages[worker.Outcome("dead_lettered")], s.Messages[worker.Outcome("abandoned")],
		s.Reconciles[worker.ActionGrant], s.Reconciles[worker.ActionRevoke], s.Reconciles[worker.ActionNoop], s.Reconciles[worker.ActionSkip],
		s.Errors, s.Coalesced)
}
