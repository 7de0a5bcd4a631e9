package acstest

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/statusrec"
)

// DefaultAPIVersions are the api-version values the emulator accepts unless
// Options.APIVersions says otherwise: the published versions of the assignments API.
var DefaultAPIVersions = []string{"2025-03-02-preview", "2025-06-30"}

// maxBody bounds a request body.
const maxBody = 1 << 20

// serveHTTP is the emulator: the store dump, else faults, auth, api-version, routing.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_emulator/assignments" {
		s.serveDump(w, r)
		return
	}
	s.mu.Lock()
	at := s.opts.Now()
	s.mu.Unlock()
	w.Header().Set("MS-CV", newCorrelationID())
	rec := &statusrec.Recorder{ResponseWriter: w}
	status := s.serveAPI(rec, r)
	s.record(r, at, status)
}

// serveAPI answers one API request and returns the status recorded for it.
func (s *Server) serveAPI(w *statusrec.Recorder, r *http.Request) int {
	if d := s.latency(); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return 0
		case <-s.closing:
			return 0
		}
	}
	// Read the body first: the server notices a client hanging up (a stall's end) only
	// once the body has been consumed.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if f, ok := s.nextFault(); ok {
		return s.applyFault(w, r, f)
	}
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "the body is larger than 1 MiB")
		return w.Status
	}
	if reason := s.authenticate(r, body); reason != "" {
		// The code is the service's (observed: "Denied"); the reason is the emulator's, for
		// whoever debugs a signature.
		writeError(w, http.StatusUnauthorized, "Denied", "Denied by the resource provider: "+reason)
		return w.Status
	}
	if f, ok := s.methodFault(r.Method); ok {
		return s.applyFault(w, r, f)
	}
	s.mu.Lock()
	forbidden := s.opts.SubscriptionNotAllowed
	s.mu.Unlock()
	if forbidden {
		writeError(w, http.StatusForbidden, "SubscriptionNotAllowed", "API is not allowed to be accessed with your subscription.")
		return w.Status
	}
	if v := r.URL.Query().Get("api-version"); !slices.Contains(s.opts.APIVersions, v) {
		writeError(w, http.StatusBadRequest, "UnsupportedApiVersion",
			"api-version '"+v+"' is not supported; use one of "+strings.Join(s.opts.APIVersions, ", "))
		return w.Status
	}
	tenantID, objectID, ok := parseAssignmentPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", "no such resource")
		return w.Status
	}
	if !isGUID(tenantID) || !isGUID(objectID) {
		writeError(w, http.StatusBadRequest, "InvalidArgument", "tenantId and objectId must be GUIDs")
		return w.Status
	}
	switch r.Method {
	case http.MethodGet:
		s.serveGet(w, tenantID, objectID)
	case http.MethodPut:
		s.servePut(w, tenantID, objectID, body)
	case http.MethodDelete:
		s.serveDelete(w, tenantID, objectID)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not supported")
	}
	return w.Status
}

// parseAssignmentPath matches /access/teamsExtension/tenants/{t}/assignments/{o}.
func parseAssignmentPath(p string) (tenantID, objectID string, ok bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) != 6 || !strings.EqualFold(parts[0], "access") || !strings.EqualFold(parts[1], "teamsExtension") ||
		!strings.EqualFold(parts[2], "tenants") || !strings.EqualFold(parts[4], "assignments") {
		return "", "", false
	}
	return parts[3], parts[5], true
}

func (s *Server) serveGet(w http.ResponseWriter, tenantID, objectID string) {
	a, ok := s.lookup(tenantID, objectID)
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", "no assignment for object "+objectID)
		return
	}
	writeJSON(w, http.StatusOK, s.answer(a))
}

func (s *Server) servePut(w http.ResponseWriter, tenantID, objectID string, body []byte) {
	pt, ids, reason := parsePutBody(body, s.opts.AcceptResourceAccountAs)
	if reason != "" {
		writeError(w, http.StatusBadRequest, "InvalidArgument", reason)
		return
	}
	a := Assignment{ObjectID: objectID, TenantID: tenantID, PrincipalType: pt, ClientIDs: ids}
	status := http.StatusOK
	if s.put(a) {
		status = http.StatusCreated
	}
	writeJSON(w, status, s.answer(a))
}

func (s *Server) serveDelete(w http.ResponseWriter, tenantID, objectID string) {
	if !s.remove(tenantID, objectID) {
		writeError(w, http.StatusNotFound, "NotFound", "no assignment for object "+objectID)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveDump answers GET /_emulator/assignments with the whole store (local use, no auth).
func (s *Server) serveDump(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "only GET")
		return
	}
	writeJSON(w, http.StatusOK, s.Assignments())
}
