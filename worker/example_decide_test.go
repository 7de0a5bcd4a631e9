package worker_test

import (
	"fmt"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// A user who lost their Teams licence keeps the access another application gave them: only
// our client id is removed.
func ExampleDecide() {
	policy := worker.Policy{ClientIDs: []string{"1a1a1a1a-0000-4000-8000-000000000001"}}
	current := &worker.Assignment{
		ObjectID:      "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f",
		PrincipalType: worker.PrincipalUser,
		ClientIDs:     []string{"1a1a1a1a-0000-4000-8000-000000000001", "9f9f9f9f-0000-4000-8000-00000000000f"},
	}
	verdict := worker.Verdict{Reason: "teams plan suspended"}

	plan := worker.Decide(verdict, worker.CommandReconcile, current, policy)
	fmt.Println(plan.Action, "-", plan.Reason)
	fmt.Println("put:", plan.Put.PrincipalType, plan.Put.ClientIDs, "delete:", plan.Delete)

	// Replaying the same notification after the write changes nothing.
	current.ClientIDs = plan.Put.ClientIDs
	fmt.Println(worker.Decide(verdict, worker.CommandReconcile, current, policy).Action)
	// Output:
	// revoke - teams plan suspended
	// put: user [9f9f9f9f-0000-4000-8000-00000000000f] delete: false
	// noop
}
