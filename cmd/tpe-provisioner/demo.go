package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func init() {
	commands["demo"] = command{
		summary: "the whole product on local emulators: onboarding, offboarding, duplicates, throttling, a forged message, a backfill",
		exits:   []exitCode{{1, "also: a chapter or the final state did not match the policy"}},
		run:     runStoryDemo,
	}
}

// runStoryDemo starts both emulators with the sample directory and tells the story in
// demo_story.go through the same code run uses (newService, worker.New, backfill.Run);
// only the endpoints differ. It checks itself: every chapter must end with the expected
// action and the final state must match the policy for every principal, else it exits 1.
func runStoryDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep-running", false, "leave the emulators up afterwards and print the settings to use them")
	verbose := fs.Bool("verbose", false, "write the JSON audit log to stderr")
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	root, err := demoRoot()
	if err != nil {
		return err
	}
	e, err := startEmulators(ctx, emulateFlags{acsListen: "127.0.0.1:0", graphListen: "127.0.0.1:0",
		directory: filepath.Join(root, localDirectory)}, io.Discard)
	if err != nil {
		return err
	}
	defer e.Close()
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = newLogger(stderr, "json", "info")
	}
	svc, err := demoService(e, log)
	if err != nil {
		return err
	}
	st := &story{e: e, svc: svc, log: log, out: stdout, names: map[string]string{}}
	st.remember()
	failures, err := st.tell(ctx)
	if err != nil {
		return err
	}
	if len(failures) > 0 {
		fmt.Fprintln(stdout, "\nDEMO FAILED — the product did not do what the story expects:")
		for _, f := range failures {
			fmt.Fprintln(stdout, "  -", f)
		}
		return &exitError{code: 1}
	}
	fmt.Fprintln(stdout, "\nEvery chapter ended as expected, and the final state matches the policy for every principal.")
	if *keep {
		fmt.Fprintln(stdout, "\nEmulators still running; point the other commands at them with:")
		for _, kv := range e.env() {
			fmt.Fprintf(stdout, "%s=%s\n", kv[0], kv[1])
		}
		fmt.Fprintln(stdout, "(Ctrl-C stops)")
		<-ctx.Done()
	}
	return nil
}

// demoService configures the service from the emulators' settings only, so whatever the
// caller's environment holds cannot point the demo at a real tenant.
func demoService(e *emulators, log *slog.Logger) (*service, error) {
	env := map[string]string{"TPE_HTTP_LISTEN": "off", "TPE_CONCURRENCY": "8"}
	for _, kv := range e.env() {
		env[kv[0]] = kv[1]
	}
	var c Config
	if err := c.bindFlags(flag.NewFlagSet("demo", flag.ContinueOnError), func(k string) string { return env[k] }); err != nil {
		return nil, err
	}
	if err := c.Validate(needs{acs: true, clientIDs: true, graph: true}); err != nil {
		return nil, err
	}
	return newService(&c, log, nil)
}

// demoRoot finds the directory holding go.mod, from the working directory up, so the demo
// runs from the repository root (go run) and from a package directory (go test).
func demoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("demo: run it from the repository (go run ./cmd/tpe-provisioner demo): deploy/local/directory.json is needed")
		}
		dir = parent
	}
}

// story runs the chapters and keeps what happened.
type story struct {
	e     *emulators
	svc   *service
	log   *slog.Logger
	out   io.Writer
	mu    sync.Mutex
	rows  []storyRow
	names map[string]string // object id → UPN, including users deleted along the way
}

type storyRow struct {
	chapter   int
	principal string
	event     string // the notification's kind, as the decoder named it ("users/updated", ...)
	action    worker.Action
	reason    string
}

func (s *story) remember() {
	for _, u := range s.e.dir.Users() {
		s.names[u.ID] = u.UserPrincipalName
	}
	for _, u := range s.e.dir.DeletedUsers() {
		if _, known := s.names[u.ID]; !known { // Graph prefixes a deleted user's UPN with its id
			s.names[u.ID] = u.UserPrincipalName
		}
	}
}

func (s *story) name(id string) string {
	if n := s.names[id]; n != "" {
		return n
	}
	return id
}

func (s *story) tell(ctx context.Context) ([]string, error) {
	fmt.Fprintf(s.out, "tpe-provisioner demo — tenant %s, %d users, scope group %q\n",
		s.e.dir.TenantID(), len(s.e.dir.Users()), "Teams Phone Extensibility")
	fmt.Fprintf(s.out, "ACS emulator %s · Graph emulator %s/v1.0 · the real worker, clients and HTTP in between\n\n", s.e.acs.URL(), s.e.graph.URL())

	sum, err := s.backfill(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("initial backfill: %w", err)
	}
	fmt.Fprintf(s.out, "0. day one: backfill of the whole scope — %d candidates, granted %d, nothing else to do for %d (%d Graph calls, %d ACS reads, %d writes)\n",
		sum.Candidates, sum.Applied[worker.ActionGrant], sum.Planned[worker.ActionNoop], sum.Directory.Calls, sum.ACSReads, sum.ACSWrites)

	var failures []string
	chapters := storyChapters(s.e.dir.TenantID())
	for i, ch := range chapters {
		n := i + 1
		throttledBefore := s.countStatus(429)
		if ch.change != nil {
			if err := ch.change(s.e.dir, s.e); err != nil {
				return nil, fmt.Errorf("chapter %d: %w", n, err)
			}
			s.remember()
		}
		src := worker.NewMemorySource(ch.bodies, worker.FileOptions{Backoff: func(int) time.Duration { return 50 * time.Millisecond }})
		w, err := worker.New(src, s.svc.rec, s.svc.dir, worker.Options{Concurrency: 4, Logger: s.log, Probe: s.svc.probe,
			Trust: worker.Trust{TenantID: s.svc.cfg.TenantID, ClientState: s.svc.cfg.ClientState}, Observer: storyObserver{s, n, ch}})
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := w.Run(ctx); err != nil {
			return nil, fmt.Errorf("chapter %d: %w", n, err)
		}
		note := ""
		if t := s.countStatus(429) - throttledBefore; t > 0 {
			note = fmt.Sprintf("; ACS answered 429 ×%d, the client waited Retry-After and retried", t)
		}
		fmt.Fprintf(s.out, "%d. %s — %d message(s) in %s%s\n", n, ch.title, len(ch.bodies), time.Since(start).Round(time.Millisecond), note)
		failures = append(failures, s.check(n, ch)...)
	}

	plan, err := s.backfill(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("final backfill: %w", err)
	}
	left := plan.Planned[worker.ActionGrant] + plan.Planned[worker.ActionRevoke]
	fmt.Fprintf(s.out, "%d. backfill --dry-run — %d candidates, %d change(s) left to make\n", len(chapters)+1, plan.Candidates, left)
	if left != 0 {
		failures = append(failures, fmt.Sprintf("the final backfill still plans %d change(s)", left))
	}
	s.printRows(len(chapters))
	s.printAssignments()
	return append(failures, s.checkPolicy()...), nil
}

func (s *story) backfill(ctx context.Context, dryRun bool) (backfill.Summary, error) {
	o := s.svc.backfillOptions()
	o.DryRun = dryRun
	return backfill.Run(ctx, o)
}

func (s *story) countStatus(code int) int {
	n := 0
	for _, r := range s.e.acs.Requests() {
		if r.Status == code {
			n++
		}
	}
	return n
}

// check compares what the worker did in chapter n with what the chapter expects: the
// expected action at least once, and nothing but no-ops besides (duplicates, late copies).
func (s *story) check(n int, ch chapter) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var failures []string
	for id, want := range ch.want {
		var got []worker.Action
		for _, r := range s.rows {
			if r.chapter == n && r.principal == id {
				got = append(got, r.action)
			}
		}
		ok := slices.Contains(got, want)
		for _, a := range got {
			ok = ok && (a == want || a == worker.ActionNoop)
		}
		if !ok {
			failures = append(failures, fmt.Sprintf("chapter %d (%s): %s got %v, want %s", n, ch.title, s.name(id), got, want))
		}
	}
	return failures
}

// checkPolicy compares every principal's final assignment (the directory's, live and
// deleted, and whoever ACS holds one for) with the policy's verdict on the final directory.
func (s *story) checkPolicy() []string {
	p := s.svc.policy()
	held := oracle.Held(s.e.acs, s.e.dir.TenantID())
	var failures []string
	for _, id := range oracle.All(s.e.dir, held) {
		v := oracle.Verdict(s.e.dir, p, id)
		if want, has := v.Type != "", held[id] != nil; want != has {
			failures = append(failures, fmt.Sprintf("%s: eligible=%v (%s) but assignment held=%v", s.name(id), want, v.Reason, has))
		}
	}
	return failures
}

func (s *story) printRows(chapters int) {
	s.mu.Lock()
	rows := slices.Clone(s.rows)
	s.mu.Unlock()
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].chapter < rows[j].chapter })
	fmt.Fprintln(s.out, "\nWhat the worker did, message by message:")
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHAPTER\tPRINCIPAL\tEVENT\tACTION\tREASON")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.chapter, s.name(r.principal), r.event, r.action, r.reason)
	}
	_ = tw.Flush()
}

func (s *story) printAssignments() {
	as := s.e.acs.Assignments()
	sort.Slice(as, func(i, j int) bool { return s.name(as[i].ObjectID) < s.name(as[j].ObjectID) })
	fmt.Fprintf(s.out, "\nFinal assignments in ACS (%d):\n", len(as))
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL\tTYPE\tCLIENT IDS")
	for _, a := range as {
		ids := strings.Join(a.ClientIDs, ",")
		if ids == "" {
			ids = "—"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.name(a.ObjectID), a.PrincipalType, ids)
	}
	_ = tw.Flush()
}

// storyObserver records every reconcile and dead-letter of one chapter.
type storyObserver struct {
	s       *story
	chapter int
	ch      chapter
}

func (o storyObserver) Reconciled(_ *worker.Delivery, t worker.Target, res worker.Result, err error) {
	row := storyRow{chapter: o.chapter, principal: res.ObjectID, event: t.Source, action: res.Action, reason: res.Reason}
	if row.principal == "" {
		row.principal = t.Principal
	}
	if err != nil {
		row.action, row.reason = "error", err.Error()
	}
	o.s.mu.Lock()
	o.s.rows = append(o.s.rows, row)
	o.s.mu.Unlock()
}

func (o storyObserver) Settled(_ *worker.Delivery, outcome worker.Outcome, reason string) {
	if outcome != worker.OutcomeDeadLettered {
		return
	}
	principal := "(message)"
	for id := range o.ch.want { // the chapter's subject
		principal = id
	}
	o.s.mu.Lock()
	o.s.rows = append(o.s.rows, storyRow{chapter: o.chapter, principal: principal, event: "notification", action: wantDeadLetter, reason: reason})
	o.s.mu.Unlock()
}
