package worker_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// FuzzDecode feeds Decode arbitrary bodies (seeded with every fixture and the corpus in
// testdata/fuzz/FuzzDecode) and checks what the runtime relies on: no panic, whole-message
// failures are *PermanentError with a reason, every dropped item says why, and whatever is
// returned is safe to act on.
func FuzzDecode(f *testing.F) {
	fixtures, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range fixtures {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := worker.Decode(body, nil, wt.Trust)
		if err != nil {
			var perm *worker.PermanentError
			if !errors.As(err, &perm) || !slices.Contains(knownReasons, perm.Reason) || perm.Description == "" {
				t.Fatalf("Decode error %#v is not a *PermanentError with a known reason and a description", err)
			}
			return
		}
		for _, r := range got.Rejected {
			if r == nil || !slices.Contains(knownReasons, r.Reason) || r.Description == "" {
				t.Fatalf("rejection %#v has no known reason or no description", r)
			}
		}
		if got.Probe && (len(got.Principals) > 0 || len(got.Groups) > 0 || len(got.Lifecycle) > 0 || len(got.Rejected) > 0) {
			t.Fatalf("probe carries work: %+v", got)
		}
		for _, p := range got.Principals {
			guid := worker.IsObjectID(p.Principal) && p.Principal == strings.ToLower(p.Principal)
			if !guid && !worker.LooksLikeUPN(p.Principal) || p.Command == "" || p.Source == "" {
				t.Fatalf("principal %+v is not actionable", p)
			}
		}
		for _, g := range got.Groups {
			if !worker.IsObjectID(g) || g != strings.ToLower(g) {
				t.Fatalf("group %q is not a lower-case object id", g)
			}
		}
		again, _ := worker.Decode(body, nil, wt.Trust)
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("Decode is not deterministic:\n%+v\n%+v", got, again)
		}
	})
}

var knownReasons = []string{worker.ReasonMalformed, worker.ReasonTooLarge, worker.ReasonUntrusted, worker.ReasonUnknownShape,
	worker.ReasonNotAUser, worker.ReasonBadPrincipal, worker.ReasonRejected}
