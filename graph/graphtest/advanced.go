package graphtest

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Advanced queries (aad-advanced-queries): Graph serves some directory queries from a
// separate index, reached only with the advanced query parameters — the ConsistencyLevel:
// eventual header and $count (as ?$count=true or the /$count segment). An OData cast on a
// transitive members list is one of them. Without the header, ?$count=true is silently
// ignored and the /$count segment is an error. The index is eventually consistent:
// Options.AdvancedQueryLag serves those listings from an older copy of the directory.

// advancedQuery reports whether the request opts into Graph's advanced query capabilities.
func advancedQuery(r *http.Request) bool {
	return eventualConsistency(r) && strings.EqualFold(r.URL.Query().Get("$count"), "true")
}

func eventualConsistency(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual")
}

// requireAdvanced answers 400 Request_UnsupportedQuery, as Graph documents for queries that
// need the advanced query parameters, unless the request has them or
// Options.LenientAdvancedQueries is set.
func (s *Server) requireAdvanced(w http.ResponseWriter, r *http.Request, what string) bool {
	if s.opts.LenientAdvancedQueries || advancedQuery(r) {
		return false
	}
	s.writeError(w, r, badRequest("Request_UnsupportedQuery",
		what+" requires the ConsistencyLevel header set to eventual and $count=true."))
	return true
}

// countSegment serves a /$count segment: the number as text/plain with the header, 400
// without it.
func (s *Server) countSegment(w http.ResponseWriter, r *http.Request, count func(*Directory) (int, bool)) {
	if !eventualConsistency(r) {
		s.writeError(w, r, badRequest("Request_BadRequest",
			"Count is not currently supported without the ConsistencyLevel header set to eventual."))
		return
	}
	d := s.listingDirectory(r)
	d.mu.RLock()
	n, ok := count(d)
	d.mu.RUnlock()
	if !ok {
		s.writeError(w, r, notFound(r.PathValue("id")))
		return
	}
	w.Header().Set("Content-Type", "text/plain;charset=utf-8")
	_, _ = w.Write([]byte(strconv.Itoa(n)))
}

func (s *Server) countUsers(w http.ResponseWriter, r *http.Request) {
	s.countSegment(w, r, func(d *Directory) (int, bool) { return len(d.order), true })
}

func (s *Server) countTransitiveUsers(w http.ResponseWriter, r *http.Request) {
	gid := strings.ToLower(r.PathValue("id"))
	s.countSegment(w, r, func(d *Directory) (int, bool) {
		if _, ok := d.groups[gid]; !ok {
			return 0, false
		}
		return len(d.transitiveUserMembers(gid)), true
	})
}

// listingDirectory is the directory a listing reads: with AdvancedQueryLag and the
// ConsistencyLevel: eventual header, a copy at most that old (taken now when there is none
// or it has reached that age); otherwise the live directory.
func (s *Server) listingDirectory(r *http.Request) *Directory {
	if s.opts.AdvancedQueryLag <= 0 || !eventualConsistency(r) {
		return s.dir
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lagged == nil || s.now().Sub(s.laggedAt) >= s.opts.AdvancedQueryLag {
		s.lagged, s.laggedAt = s.dir.snapshot(), s.now()
	}
	return s.lagged
}

// SnapshotListings copies the directory now for the lagged advanced-query listings
// (Options.AdvancedQueryLag): until the lag has passed they show the directory as it is at
// this call, whatever changes after it. Without AdvancedQueryLag it has no effect.
func (s *Server) SnapshotListings() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lagged, s.laggedAt = s.dir.snapshot(), s.now()
}

// snapshot returns a deep copy of the directory (users, groups, memberships), sharing
// nothing mutable with d.
func (d *Directory) snapshot() *Directory {
	d.mu.RLock()
	defer d.mu.RUnlock()
	c := NewDirectory(d.tenantID)
	c.clock = d.clock
	for id, u := range d.users {
		cu := cloneUser(u)
		c.users[id] = &cu
	}
	for id, u := range d.deleted {
		cu := cloneUser(u)
		c.deleted[id] = &cu
	}
	c.byUPN = maps.Clone(d.byUPN)
	c.order, c.delOrd = slices.Clone(d.order), slices.Clone(d.delOrd)
	for id, g := range d.groups {
		cg := *g
		cg.Members = slices.Clone(g.Members)
		c.groups[id] = &cg
	}
	for id, ps := range d.parents {
		c.parents[id] = slices.Clone(ps)
	}
	return c
}

// lag is the state of the lagged listings, guarded by Server.mu.
type lag struct {
	lagged   *Directory
	laggedAt time.Time
}
