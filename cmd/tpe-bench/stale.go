package main

import (
	"net/http"
	"strings"
	"sync"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
	"github.com/tpe-provisioner/tpe-provisioner/internal/statusrec"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// staleWatch sits in front of the ACS emulator and judges every write as it lands: a PUT
// or DELETE that leaves the principal other than the policy wants on the directory at that
// moment is stale (it was decided on a read that a later change made untrue, and the
// directory changed before it landed). A later write to the same principal that leaves it
// right repairs it. It sees the writes, not the worker, so it needs no signal from the
// worker; a directory change in the microseconds between the write and the judgement can
// count one write stale and its repair too.
type staleWatch struct {
	srv *acstest.Server // set before the first request
	dir *graphtest.Directory
	p   worker.Policy

	mu       sync.Mutex
	open     map[string]bool // principals whose last stale write is not repaired
	stale    int
	repaired int
}

func newStaleWatch(dir *graphtest.Directory, p worker.Policy) *staleWatch {
	return &staleWatch{dir: dir, p: p, open: map[string]bool{}}
}

func (s *staleWatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodDelete {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusrec.Recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.Status >= 200 && rec.Status < 300 {
			s.landed(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
		}
	})
}

// landed judges the principal id just after a write to it succeeded.
func (s *staleWatch) landed(id string) {
	id = strings.ToLower(id)
	plan := worker.Decide(oracle.Verdict(s.dir, s.p, id), worker.CommandReconcile, s.held(id), s.p)
	wrong := plan.Put != nil || plan.Delete
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case wrong:
		s.stale++
		s.open[id] = true
	case s.open[id]:
		s.repaired++
		delete(s.open, id)
	}
}

func (s *staleWatch) held(id string) *worker.Assignment {
	return oracle.Held(s.srv, s.dir.TenantID())[id]
}

// counts returns the stale writes seen and how many of them a later write repaired.
func (s *staleWatch) counts() (stale, repaired int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale, s.repaired
}
