package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Graph resource units, as Microsoft Graph's throttling limits publish them for identity
// and access (learn.microsoft.com/graph/throttling-limits, "Identity and access service
// limits"): every request has a base cost, 1 unless the table lists the path; $select takes
// 1 off, $expand adds 1, $top below 20 takes 1 off, and no request costs less than 1. A
// cost listed for me/... applies to users/{id}/... too. The bench only reads, so write
// costs are not counted. A $batch is not listed; its requests are throttled one by one, so
// it costs here what its requests cost (our assumption: the page says nothing of the batch
// envelope itself).

// graphBaseCosts are the listed base costs the worker's paths can meet, by method and the
// path's shape ({id} for an id segment).
var graphBaseCosts = map[string]int{
	"GET users":                             2,
	"GET groups/{id}/members":               3,
	"GET groups/{id}/transitiveMembers":     5,
	"POST users/{id}/checkMemberGroups":     4,
	"POST users/{id}/checkMemberObjects":    4,
	"POST users/{id}/getMemberGroups":       2,
	"POST users/{id}/getMemberObjects":      2,
	"GET users/{id}/licenseDetails":         2,
	"GET users/{id}/memberOf":               2,
	"GET users/{id}/ownedObjects":           2,
	"GET users/{id}/transitiveMemberOf":     2,
	"POST directoryObjects/getByIds":        3,
	"POST isMemberOf":                       4,
	"GET subscribedSkus":                    3,
	"GET applications":                      2,
	"GET oauth2PermissionGrants":            2,
	"GET domains/{id}/domainNameReferences": 4,
}

// graphRequestCost is the resource units of one Graph request; body is its body (a
// $batch's requests are read from it).
func graphRequestCost(r *http.Request, body []byte) int {
	reqs, isBatch := batchOf(r, body)
	return graphCallCost(r, reqs, isBatch)
}

// batchOf reports whether r is a $batch and, when it is, its requests (none when the body
// cannot be read).
func batchOf(r *http.Request, body []byte) ([]batchRequest, bool) {
	if graphPath(r.URL.Path) != "$batch" {
		return nil, false
	}
	reqs, _ := batchRequests(body)
	return reqs, true
}

// graphCallCost is graphRequestCost with the batch already read: a batch costs what its
// requests cost, 1 when it holds none that can be read.
func graphCallCost(r *http.Request, reqs []batchRequest, isBatch bool) int {
	if !isBatch {
		return graphCost(r.Method, graphPath(r.URL.Path), r.URL.Query())
	}
	if len(reqs) == 0 {
		return 1
	}
	n := 0
	for _, br := range reqs {
		u, err := url.Parse(br.URL)
		if err != nil {
			n++
			continue
		}
		n += graphCost(strings.ToUpper(br.Method), graphPath(u.Path), u.Query())
	}
	return n
}

// graphRequestCount is how many Graph requests r carries: a $batch's requests (1 when its
// body cannot be read), 1 for any other request.
func graphRequestCount(r *http.Request, body []byte) int {
	return graphCallCount(batchOf(r, body))
}

func graphCallCount(reqs []batchRequest, isBatch bool) int {
	if isBatch && len(reqs) > 0 {
		return len(reqs)
	}
	return 1
}

// graphCost is the cost of one request to path (relative to the version root).
func graphCost(method, path string, q url.Values) int {
	cost, ok := graphBaseCosts[method+" "+path]
	if !ok {
		cost, ok = graphBaseCosts[method+" "+pathShape(path)]
	}
	if !ok {
		cost = 1
	}
	if q.Has("$select") {
		cost--
	}
	if q.Has("$expand") {
		cost++
	}
	if top, err := strconv.Atoi(q.Get("$top")); err == nil && top < 20 {
		cost--
	}
	return max(cost, 1)
}

// graphPath strips the leading slash and the version segment.
func graphPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	for _, v := range []string{"v1.0/", "beta/"} {
		if strings.HasPrefix(p, v) {
			return p[len(v):]
		}
	}
	return p
}

// pathShape replaces the id segment of collection/{id}/... with {id} and drops what follows
// the segment after it (a type cast such as /microsoft.graph.user).
func pathShape(p string) string {
	segs := strings.Split(p, "/")
	if len(segs) >= 2 {
		segs[1] = "{id}"
	}
	if len(segs) > 3 {
		segs = segs[:3]
	}
	return strings.Join(segs, "/")
}

// batchRequest is one request of a JSON batch.
type batchRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

func batchRequests(body []byte) ([]batchRequest, bool) {
	var b struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, false
	}
	return b.Requests, true
}
