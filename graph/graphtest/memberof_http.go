package graphtest

import (
	"fmt"
	"net/http"
	"strings"
)

// groupProps are the group properties the emulator stores, by lower-case name.
var groupProps = map[string]string{"id": "id", "displayname": "displayName"}

// transitiveMemberOf serves GET /v1.0/users/{id | UPN}/transitiveMemberOf
// (user-list-transitivememberof): the groups the user is a member of directly or through
// nested groups, as directoryObjects each with "@odata.type": "#microsoft.graph.group".
// Standard query mode: $select (id, displayName), $top (default Options.PageSize, at most
// 999, then capped at Options.MaxPageSize) and $skiptoken paging with @odata.nextLink.
// The page says ConsistencyLevel: eventual and $count are required with $search, $filter,
// $orderby and the OData cast; the emulator answers those (with or without the header) 400
// Request_UnsupportedQuery, because it implements none of them. Not settled by a public
// source, and the emulator's choice: the order of the items (by id), and that
// @odata.type is sent with $select=id too (the page's example, without $select, shows it).
// The emulator holds no directory roles or administrative units, which Graph lists here
// too.
func (s *Server) transitiveMemberOf(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, p := range []string{"$filter", "$search", "$orderby", "$count"} {
		if q.Has(p) {
			s.writeError(w, r, badRequest("Request_UnsupportedQuery", "Unsupported Query."))
			return
		}
	}
	sel := []string{"id", "displayName"}
	if raw := q.Get("$select"); raw != "" {
		sel = nil
		for p := range strings.SplitSeq(raw, ",") {
			name, ok := groupProps[strings.ToLower(strings.TrimSpace(p))]
			if !ok {
				s.writeError(w, r, badRequest("Request_BadRequest",
					fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", strings.TrimSpace(p))))
				return
			}
			sel = append(sel, name)
		}
	}
	page, e := parsePage(r, s.opts.PageSize, s.opts.MaxPageSize)
	if e == nil {
		page.count = false
	}
	key, ke := userKey(r)
	if e == nil {
		e = ke
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	s.dir.mu.RLock()
	u := s.dir.lookup(key)
	var value []map[string]any
	end, total := 0, 0
	if u != nil {
		all := s.dir.transitiveGroupsOf(u.ID)
		total = len(all)
		start := min(page.offset, total)
		end = min(start+page.size, total)
		value = make([]map[string]any, 0, end-start)
		for _, gid := range all[start:end] {
			item := map[string]any{"@odata.type": "#microsoft.graph.group"}
			for _, p := range sel {
				switch p {
				case "id":
					item["id"] = gid
				case "displayName":
					name := ""
					if g := s.dir.groups[gid]; g != nil {
						name = g.DisplayName
					}
					item["displayName"] = nullable(name)
				}
			}
			value = append(value, item)
		}
	}
	s.dir.mu.RUnlock()
	if u == nil {
		s.writeError(w, r, notFound(key))
		return
	}
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "value": value}
	if end < total {
		body["@odata.nextLink"] = nextLink(r, end)
	}
	writeJSON(w, http.StatusOK, body)
}
