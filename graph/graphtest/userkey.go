package graphtest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// OData addresses an entity by key either as a path segment (/users/{key}) or in
// parentheses (/users('{key}'), a quote doubled inside). Graph reads a segment that starts
// with $ as a system segment, so /users/$x@y is 400 and a UPN starting with $ must be sent
// as /users('$x@y') (user-get, "HTTP request" tip). The emulator serves the parenthesised
// form on the same routes, marking the request so the key check lets $ through.

type quotedKey struct{}

// unquoteUserKey rewrites /v1.0/users('{key}')[/rest] to /v1.0/users/{key}[/rest] for
// routing, with the request marked as quoted. Anything else is returned as it is.
func unquoteUserKey(r *http.Request) *http.Request {
	const prefix = "/v1.0/users('"
	p := r.URL.Path
	if !strings.HasPrefix(p, prefix) {
		return r
	}
	end := closingQuote(p, len(prefix))
	if end < 0 || !strings.HasPrefix(p[end:], "')") {
		return r
	}
	key := strings.ReplaceAll(p[len(prefix):end], "''", "'")
	rest := p[end+2:]
	if rest != "" && !strings.HasPrefix(rest, "/") {
		return r
	}
	r2 := r.Clone(context.WithValue(r.Context(), quotedKey{}, true))
	r2.URL.Path = "/v1.0/users/" + key + rest
	r2.URL.RawPath = "/v1.0/users/" + url.PathEscape(key) + rest
	return r2
}

// closingQuote returns the index of the quote that ends the key starting at i (a doubled
// quote is part of the key), or -1.
func closingQuote(p string, i int) int {
	for i < len(p) {
		j := strings.IndexByte(p[i:], '\'')
		if j < 0 {
			return -1
		}
		i += j
		if i+1 < len(p) && p[i+1] == '\'' {
			i += 2
			continue
		}
		return i
	}
	return -1
}

// userKey returns the {id} of a user route, or the 400 Graph answers for a key segment that
// starts with $ outside the parenthesised form.
func userKey(r *http.Request) (string, *apiError) {
	key := r.PathValue("id")
	if quoted, _ := r.Context().Value(quotedKey{}).(bool); !quoted && strings.HasPrefix(key, "$") {
		return "", badRequest("BadRequest", "Resource not found for the segment '"+key+"'.")
	}
	return key, nil
}
