// Package adapt is wiring shared by the binaries: it fits the acs and graph clients to the
// small interfaces the worker declares (assignments, directory, enumerator, subscriptions),
// translating value types at the edge. Errors pass through untouched, so the worker still
// classifies them by behaviour (NotFound, Systemic, Temporary, RetryAfter).
package adapt
