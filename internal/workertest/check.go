package workertest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// CheckStored fails the test unless acs holds want for oid (nil: no assignment). Client ids
// compare as a set, in any letter case.
func CheckStored(t testing.TB, acs *Assignments, oid string, want *worker.Assignment) {
	t.Helper()
	got, ok := acs.Lookup(oid)
	switch {
	case want == nil && ok:
		t.Errorf("ACS holds %+v for %s, want none", got, oid)
	case want != nil && !ok:
		t.Errorf("ACS holds nothing for %s, want %+v", oid, *want)
	case want != nil && (got.PrincipalType != want.PrincipalType || !SameIDs(got.ClientIDs, want.ClientIDs)):
		t.Errorf("ACS holds %s %v for %s, want %s %v", got.PrincipalType, got.ClientIDs, oid, want.PrincipalType, want.ClientIDs)
	}
}

// SameIDs reports whether a and b hold the same client ids, ignoring order, letter case and
// repeats.
func SameIDs(a, b []string) bool {
	norm := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = strings.ToLower(id)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// JSONKeys returns the top-level keys of one JSON object in the order written, repeats
// included (a map would hide them).
func JSONKeys(t testing.TB, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading a key of %q: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("reading the value of %v in %q: %v", tok, line, err)
		}
	}
	return keys
}

// RepeatedKeys returns the top-level keys that appear more than once in a JSON record.
func RepeatedKeys(t testing.TB, line string) []string {
	t.Helper()
	seen := map[string]int{}
	var out []string
	for _, k := range JSONKeys(t, line) {
		if seen[k]++; seen[k] == 2 {
			out = append(out, k)
		}
	}
	return out
}

// Metric returns the value of the one series of the counter or gauge name in g.
func Metric(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%s has %d series, want 1", name, len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		return m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
