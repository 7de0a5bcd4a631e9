package graphtest

import (
	"net/http"
	"strings"
)

// getGroup serves GET /v1.0/groups/{id}: the group's id and displayName (the properties the
// emulator stores), or 404 Request_ResourceNotFound.
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	g, ok := s.dir.Group(id)
	if !ok {
		s.writeError(w, r, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups/$entity",
		"id":             g.ID,
		"displayName":    nullable(g.DisplayName),
	})
}
