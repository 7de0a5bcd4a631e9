package sbtest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// Launch starts an endpoint outside a test (the emulate command does this); the real
// client connects with the endpoint's connection string. Tests use Start instead.
func ExampleLaunch() {
	ctx := context.Background()
	srv, err := sbtest.Launch(ctx, sbtest.Options{Queue: "tasks", LockDuration: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	client, err := azservicebus.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	sender, _ := client.NewSender(srv.Queue(), nil)
	_ = sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(`{"command":"reconcile","principal":"alice@example.com"}`)}, nil)

	st, _ := srv.Stats(ctx)
	fmt.Println("active:", st.Active)
}
