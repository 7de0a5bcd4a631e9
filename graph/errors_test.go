package graph_test

import (
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
)

func TestErrorBehaviour(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      *graph.Error
		want     behaviour
		conflict bool
	}{
		{"404 Request_ResourceNotFound", &graph.Error{StatusCode: 404, Code: "Request_ResourceNotFound"}, behaviour{notFound: true}, false},
		{"404 ResourceNotFound", &graph.Error{StatusCode: 404, Code: "ResourceNotFound"}, behaviour{notFound: true}, false},
		{"404 with another code is permanent, not 'not found'", &graph.Error{StatusCode: 404, Code: "BadRequest"}, behaviour{}, false},
		{"400 is permanent", &graph.Error{StatusCode: 400, Code: "Request_BadRequest"}, behaviour{}, false},
		{"408 is temporary", &graph.Error{StatusCode: 408}, behaviour{temporary: true}, false},
		{"504 is temporary", &graph.Error{StatusCode: 504}, behaviour{temporary: true}, false},
		{"no response (transport) is temporary", &graph.Error{}, behaviour{temporary: true}, false},
		{"403 is systemic", &graph.Error{StatusCode: 403, Code: "Authorization_RequestDenied"}, behaviour{systemic: true}, false},
		{"409 is a conflict", &graph.Error{StatusCode: 409}, behaviour{}, true},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("%s: behaviour = %+v, want %+v", tt.name, got, tt.want)
		}
		if got := tt.err.Conflict(); got != tt.conflict {
			t.Errorf("%s: Conflict() = %v, want %v", tt.name, got, tt.conflict)
		}
	}
}
