package graphtest_test

import (
	"fmt"
	"strings"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// The pure helpers answer the questions a reconcile asks of Graph, without HTTP: a test of
// the worker can build its in-memory directory from the same fixture the emulator serves.
func ExampleDirectory_TransitiveGroupsOf() {
	d, err := graphtest.LoadDirectory(strings.NewReader(`{
	  "tenantId": "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61",
	  "users": [{"id": "4f6a1c9e-2b7d-4e3a-9c8f-5d1b0e7a6c21", "userPrincipalName": "lee.gu@contoso.example", "accountEnabled": true}],
	  "groups": [
	    {"id": "5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11", "displayName": "Teams Phone Extensibility", "members": ["a3e7c1f0-5b2d-4e8a-9c6f-1d4b7e2a9c30"]},
	    {"id": "a3e7c1f0-5b2d-4e8a-9c6f-1d4b7e2a9c30", "displayName": "Contact Center Agents", "members": ["4f6a1c9e-2b7d-4e3a-9c8f-5d1b0e7a6c21"]}
	  ]
	}`))
	if err != nil {
		panic(err)
	}
	u, ok := d.LookupUser("Lee.Gu@contoso.example")
	fmt.Println(ok, u.ID)
	fmt.Println(d.TransitiveGroupsOf(u.ID))
	fmt.Println(d.TransitiveUserMembers("5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11"))
	// Output:
	// true 4f6a1c9e-2b7d-4e3a-9c8f-5d1b0e7a6c21
	// [5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11 a3e7c1f0-5b2d-4e8a-9c6f-1d4b7e2a9c30]
	// [4f6a1c9e-2b7d-4e3a-9c8f-5d1b0e7a6c21]
}
