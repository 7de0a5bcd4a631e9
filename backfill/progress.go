package backfill

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Progress redraw periods: a terminal bar is redrawn often; a log (CI, container) gets a
// line every few seconds.
const (
	progressBarEvery  = 250 * time.Millisecond
	progressLineEvery = 5 * time.Second
	progressBarWidth  = 30
)

// progressMeter reports how far a backfill phase got on w (stderr): a bar with rate and
// ETA redrawn in place when w is a terminal, otherwise one line every five seconds. While
// candidates are still being enumerated the total is unknown, so only the count and the
// rate are shown; the ETA appears once the total is known. A nil *progressMeter does
// nothing, so callers need no checks.
type progressMeter struct {
	w        io.Writer
	terminal bool
	clock    worker.Clock
	phase    string
	start    time.Time
	done     atomic.Int64
	total    atomic.Int64 // -1 while unknown
	stop     chan struct{}
	stopped  sync.WaitGroup
}

// startProgress starts reporting phase on w; nil w means no output (and a nil meter).
func startProgress(w io.Writer, terminal bool, clock worker.Clock, phase string, total int) *progressMeter {
	if w == nil {
		return nil
	}
	p := &progressMeter{w: w, terminal: terminal, clock: clock, phase: phase,
		start: clock.Now(), stop: make(chan struct{})}
	p.total.Store(int64(total))
	every := progressLineEvery
	if terminal {
		every = progressBarEvery
	}
	p.stopped.Go(func() { p.loop(every) })
	return p
}

func (p *progressMeter) loop(every time.Duration) {
	for {
		select {
		case <-p.stop:
			return
		case <-p.clock.After(every):
			p.draw(false)
		}
	}
}

// add counts n more principals done.
func (p *progressMeter) add(n int) {
	if p != nil {
		p.done.Add(int64(n))
	}
}

// setTotal says how many principals the phase has in all, once that is known.
func (p *progressMeter) setTotal(n int) {
	if p != nil {
		p.total.Store(int64(n))
	}
}

// finish stops the redraws and prints the final state on its own line, in one write, so
// it is out before the caller logs its summary and nothing can be written between the
// final bar and its newline.
func (p *progressMeter) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.stopped.Wait()
	p.draw(true)
}

// draw writes the current state with one Write: a line ending in a newline for a log, a
// redraw in place for a terminal (ended by a newline when final).
func (p *progressMeter) draw(final bool) {
	s := progressSnapshot{Phase: p.phase, Done: p.done.Load(), Total: p.total.Load(),
		Elapsed: p.clock.Now().Sub(p.start)}
	line := renderProgress(s, false) + "\n"
	if p.terminal {
		line = "\r" + renderProgress(s, true) + "\x1b[K" // clear what a longer line left
		if final {
			line += "\n"
		}
	}
	_, _ = io.WriteString(p.w, line) // progress is best effort; the summary reports the result
}

// progressSnapshot is one moment of a phase. Total is -1 while unknown.
type progressSnapshot struct {
	Phase   string
	Done    int64
	Total   int64
	Elapsed time.Duration
}

// renderProgress formats a snapshot: a bar for a terminal, key=value text for a log.
// Pure.
func renderProgress(s progressSnapshot, terminal bool) string {
	rate := 0.0
	if secs := s.Elapsed.Seconds(); secs > 0 {
		rate = float64(s.Done) / secs
	}
	eta := "?"
	if s.Total >= 0 && rate > 0 {
		left := max(s.Total-s.Done, 0)
		eta = formatETA(time.Duration(float64(left) / rate * float64(time.Second)))
	}
	if !terminal {
		if s.Total < 0 {
			return fmt.Sprintf("backfill %s: done=%d total=enumerating rate=%.0f/s elapsed=%s",
				s.Phase, s.Done, rate, s.Elapsed.Round(time.Second))
		}
		return fmt.Sprintf("backfill %s: done=%d total=%d rate=%.0f/s elapsed=%s eta=%s",
			s.Phase, s.Done, s.Total, rate, s.Elapsed.Round(time.Second), eta)
	}
	if s.Total < 0 {
		return fmt.Sprintf("%-5s %d principals, %.0f/s (enumerating)", s.Phase, s.Done, rate)
	}
	return fmt.Sprintf("%-5s [%s] %d/%d %.0f/s ETA %s", s.Phase, progressBar(s.Done, s.Total), s.Done, s.Total, rate, eta)
}

// progressBar draws done/total as a fixed-width bar.
func progressBar(done, total int64) string {
	filled := progressBarWidth
	if total > 0 {
		filled = int(min(done, total) * progressBarWidth / total)
	}
	return strings.Repeat("=", filled) + strings.Repeat(" ", progressBarWidth-filled)
}

// formatETA prints a duration as m:ss, or h:mm:ss past an hour.
func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
