package graph_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
)

func TestGroupExists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		group  string
		faults []int
		want   bool
		err    behaviour // zero with no error
		status int
	}{
		{"configured scope group exists", scope, nil, true, behaviour{}, 0},
		{"upper-case id of a group exists", "5D0C2A4E-9B1F-4C6A-8E3D-2F7A1B9C0E11", nil, true, behaviour{}, 0},
		{"unknown group is missing, not an error", "3e9a1f7c-0b2d-4c8e-9f6a-1d5b7c3e2a90", nil, false, behaviour{}, 0},
		{"403 is systemic, never missing", scope, []int{http.StatusForbidden}, false, behaviour{systemic: true}, 403},
		{"500 is temporary, never missing", scope, []int{http.StatusInternalServerError}, false, behaviour{temporary: true}, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, srv := newClient(t, testDirectory(t), graph.Options{})
			for _, st := range tt.faults {
				srv.FailNext(st, 0)
			}
			got, err := c.GroupExists(context.Background(), tt.group)
			if got != tt.want {
				t.Errorf("GroupExists(%s) = %v, want %v (err %v)", tt.group, got, tt.want, err)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if b := classify(err); b != tt.err {
				t.Errorf("behaviour = %+v, want %+v (err %v)", b, tt.err, err)
			}
			var ge *graph.Error
			if !errors.As(err, &ge) || ge.StatusCode != tt.status {
				t.Errorf("err = %v, want *graph.Error with status %d", err, tt.status)
			}
		})
	}
}

func TestGroupExistsSelectsOnlyTheID(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{})
	if _, err := c.GroupExists(context.Background(), scope); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Route != "GET /v1.0/groups/{id}" || queryOf(t, reqs[0].Query).Get("$select") != "id" {
		t.Errorf("requests = %+v, want one GET /groups/{id} with $select=id", reqs)
	}
}

func queryOf(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
