package acs_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

// Grant a Teams user our application, read it back, revoke it. The emulator stands in for
// the ACS resource; against Azure the connection string comes from the resource's Keys.
func Example() {
	srv := acstest.New(acstest.Options{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	client, err := acs.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	const (
		tenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		userID   = "0b9f1b0e-3c2d-4a5e-8f6a-1d2c3b4a5e6f"
		appID    = "11111111-2222-3333-4444-555555555555"
	)

	a, created, err := client.Put(ctx, tenantID, acs.Assignment{
		ObjectID:      userID,
		PrincipalType: acs.PrincipalUser,
		ClientIDs:     []string{appID},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created, a.PrincipalType, a.ClientIDs)

	if _, err := client.Delete(ctx, tenantID, userID); err != nil {
		log.Fatal(err)
	}
	_, err = client.Get(ctx, tenantID, userID)
	fmt.Println("not found after delete:", acs.IsNotFound(err))
	// Output:
	// created: true user [11111111-2222-3333-4444-555555555555]
	// not found after delete: true
}
