package backfill

import (
	"log/slog"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/limiter"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// DirectoryStats are the directory client's counters, for the summary.
type DirectoryStats struct {
	Pages int64 // list pages read
	Calls int64 // HTTP calls made
}

// Summary is what a backfill did.
type Summary struct {
	Candidates int                   // principals planned (including those that failed)
	Planned    map[worker.Action]int // by action
	Assigned   int                   // candidates that held an assignment before
	Applied    map[worker.Action]int // written, or enqueued with Enqueue; empty in a dry run
	Withheld   int                   // revokes the brake held back (nothing was applied then)
	Stale      int                   // planned writes a fresh read decided otherwise when applying
	// ScopeListed is how many users the scope listing held (0 without scope groups).
	ScopeListed int
	Brake       *BrakeError // set when the brake tripped (in a dry run: would trip)
	DryRun      bool
	Enqueued    bool
	Duration    time.Duration
	ACSReads    int64
	ACSWrites   int64
	Directory   DirectoryStats
	Limiter     limiter.Stats  // since the limiter was made (it may be shared)
	Errors      map[string]int // failed principals by kind: "temporary", "rejected", ...
}

// Failed returns how many principals failed.
func (s Summary) Failed() int {
	n := 0
	for _, v := range s.Errors {
		n += v
	}
	return n
}

// LogAttrs returns the summary as slog attributes.
func (s Summary) LogAttrs() []slog.Attr {
	counts := func(key string, m map[worker.Action]int) slog.Attr {
		return slog.Group(key, slog.Int(string(worker.ActionGrant), m[worker.ActionGrant]),
			slog.Int(string(worker.ActionRevoke), m[worker.ActionRevoke]), slog.Int(string(worker.ActionNoop), m[worker.ActionNoop]),
			slog.Int(string(worker.ActionSkip), m[worker.ActionSkip]))
	}
	return []slog.Attr{
		slog.Int(logkey.Candidates, s.Candidates),
		counts(logkey.Planned, s.Planned),
		counts(logkey.Applied, s.Applied),
		slog.Int(logkey.Assigned, s.Assigned),
		slog.Int(logkey.WithheldRevokes, s.Withheld),
		slog.Int(logkey.StaleRows, s.Stale),
		slog.Int(logkey.ScopeListed, s.ScopeListed),
		slog.Bool(logkey.Brake, s.Brake != nil),
		slog.Bool(logkey.DryRun, s.DryRun),
		slog.Bool(logkey.Enqueued, s.Enqueued),
		slog.Duration(logkey.Duration, s.Duration),
		slog.Int64(logkey.ACSReads, s.ACSReads),
		slog.Int64(logkey.ACSWrites, s.ACSWrites),
		slog.Int64(logkey.DirectoryPages, s.Directory.Pages),
		slog.Int64(logkey.DirectoryCalls, s.Directory.Calls),
		slog.Int(logkey.LimitMin, s.Limiter.Min),
		slog.Int(logkey.LimitMax, s.Limiter.Max),
		slog.Int(logkey.Failed, s.Failed()),
		slog.Any(logkey.Errors, s.Errors),
	}
}
