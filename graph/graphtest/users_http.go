package graphtest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// listUsers serves GET /v1.0/users with $select, $filter, $top, $count and $skiptoken.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	f, e := parseFilter(r.URL.Query().Get("$filter"))
	if e == nil && f.advanced() && !advancedQuery(r) {
		e = badRequest("Request_UnsupportedQuery", "Unsupported Query.")
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	s.serveUsers(w, r, "users", func(d *Directory) []*UserRecord {
		var out []*UserRecord
		for _, id := range d.order {
			if u := d.users[id]; f.match(u) {
				out = append(out, u)
			}
		}
		return out
	})
}

// rejectFilter answers 400 for a $filter on a listing whose filters the emulator does not
// implement (the graph package filters those client-side).
func (s *Server) rejectFilter(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Query().Get("$filter") == "" {
		return false
	}
	s.writeError(w, r, badRequest("Request_UnsupportedQuery", "Unsupported Query."))
	return true
}

// serveUsers writes one page of the users pick returns (called under the directory's read
// lock), with only the selected properties, @odata.count when asked and @odata.nextLink
// when more remain.
func (s *Server) serveUsers(w http.ResponseWriter, r *http.Request, context string, pick func(*Directory) []*UserRecord) {
	sel, e := parseSelect(r)
	page, pe := parsePage(r, s.opts.PageSize, s.opts.MaxPageSize)
	if e == nil {
		e = pe
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	strip, empty, d := s.stripped(), s.emptied(r), s.listingDirectory(r)
	page.count = page.count && eventualConsistency(r) // ignored without the header
	d.mu.RLock()
	var all []*UserRecord
	if !empty {
		all = pick(d)
	}
	start := min(page.offset, len(all))
	end := min(start+page.size, len(all))
	value := make([]map[string]any, 0, end-start)
	for _, u := range all[start:end] {
		value = append(value, renderUser(u, sel, strip))
	}
	d.mu.RUnlock()

	body := map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#" + context,
		"value":          value,
	}
	if page.count {
		body["@odata.count"] = len(all)
	}
	if end < len(all) {
		body["@odata.nextLink"] = nextLink(r, end)
	}
	writeJSON(w, http.StatusOK, body)
}

// getUser serves GET /v1.0/users/{id or UPN}; a deleted user is 404 as in Graph.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	sel, e := parseSelect(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	key, e := userKey(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	strip := s.stripped()
	s.dir.mu.RLock()
	u := s.dir.lookup(key)
	var body map[string]any
	if u != nil {
		body = renderUser(u, sel, strip)
	}
	s.dir.mu.RUnlock()
	if body == nil {
		s.writeError(w, r, notFound(key))
		return
	}
	body["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	writeJSON(w, http.StatusOK, body)
}

// deletedUsers serves GET /v1.0/directory/deletedItems/microsoft.graph.user. The one
// $filter it runs is endswith(userPrincipalName,'…'), which Graph answers only as an
// advanced query (ConsistencyLevel: eventual and $count=true; without them a 400
// Request_UnsupportedQuery, as Graph's advanced-query documentation says of endsWith on
// directory objects). Any other filter is a 400 Request_UnsupportedQuery. The string
// literal follows OData: quotes doubled. The match ignores letter case, as Graph's does on
// userPrincipalName. Not settled by a public source: whether deletedItems also lists users
// deleted a moment ago; the emulator lists them at once (Graph's advanced-query index lags).
func (s *Server) deletedUsers(w http.ResponseWriter, r *http.Request) {
	suffix, filtered, e := parseEndsWithUPN(r.URL.Query().Get("$filter"))
	if e == nil && filtered && !advancedQuery(r) {
		e = badRequest("Request_UnsupportedQuery", "Operator 'endsWith' is not supported because the required parameters "+
			"might be missing. Try adding $count with a value of true and set the ConsistencyLevel header to eventual.")
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	suffix = strings.ToLower(suffix)
	s.serveUsers(w, r, "directory/deletedItems/microsoft.graph.user", func(d *Directory) []*UserRecord {
		out := make([]*UserRecord, 0, len(d.delOrd))
		for _, id := range d.delOrd {
			if u := d.deleted[id]; !filtered || strings.HasSuffix(strings.ToLower(u.UserPrincipalName), suffix) {
				out = append(out, u)
			}
		}
		return out
	})
}

var endsWithUPN = regexp.MustCompile(`(?i)^endswith\(\s*userPrincipalName\s*,\s*'((?:[^']|'')*)'\s*\)$`)

// parseEndsWithUPN reads endswith(userPrincipalName,'…') from a deletedItems $filter; an
// empty filter is no filter, anything else a 400.
func parseEndsWithUPN(raw string) (suffix string, filtered bool, e *apiError) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", false, nil
	}
	m := endsWithUPN.FindStringSubmatch(raw)
	if m == nil {
		return "", false, badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified: "+raw)
	}
	return strings.ReplaceAll(m[1], "''", "'"), true, nil
}

// maxCheckGroups is Graph's limit of group ids per checkMemberGroups call.
const maxCheckGroups = 20

// checkMemberGroups serves POST /v1.0/users/{id}/checkMemberGroups {"groupIds":[...]}:
// which of the groups the user is a transitive member of.
func (s *Server) checkMemberGroups(w http.ResponseWriter, r *http.Request) {
	var body struct {
		GroupIDs []string `json:"groupIds"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		s.writeError(w, r, badRequest("Request_BadRequest", "Invalid request body: "+err.Error()))
		return
	}
	if len(body.GroupIDs) == 0 || len(body.GroupIDs) > maxCheckGroups {
		s.writeError(w, r, badRequest("Request_BadRequest", "groupIds must hold between 1 and 20 ids."))
		return
	}
	key, e := userKey(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	s.dir.mu.RLock()
	u := s.dir.lookup(key)
	var groups []string
	if u != nil {
		groups = s.dir.transitiveGroupsOf(u.ID)
	}
	s.dir.mu.RUnlock()
	if u == nil {
		s.writeError(w, r, notFound(key))
		return
	}
	member := make(map[string]bool, len(groups))
	for _, g := range groups {
		member[g] = true
	}
	value := []string{}
	for _, g := range body.GroupIDs {
		if member[strings.ToLower(g)] {
			value = append(value, g)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
		"value":          value,
	})
}

// transitiveUsers serves GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user.
func (s *Server) transitiveUsers(w http.ResponseWriter, r *http.Request) {
	if s.rejectFilter(w, r) || s.requireAdvanced(w, r, "An OData cast on transitiveMembers") {
		return
	}
	gid := strings.ToLower(r.PathValue("id"))
	d := s.listingDirectory(r)
	d.mu.RLock()
	_, ok := d.groups[gid]
	d.mu.RUnlock()
	if !ok {
		s.writeError(w, r, notFound(gid))
		return
	}
	s.serveUsers(w, r, "users", func(d *Directory) []*UserRecord {
		ids := d.transitiveUserMembers(gid)
		out := make([]*UserRecord, len(ids))
		for i, id := range ids {
			out[i] = d.users[id]
		}
		return out
	})
}
