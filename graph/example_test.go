package graph_test

import (
	"context"
	"fmt"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// A client pointed at the emulator serving the sample directory (deploy/local): the same
// calls work against https://graph.microsoft.com with a managed identity credential.
func ExampleClient_User() {
	dir, err := graphtest.LoadDirectoryFile("../deploy/local/directory.json")
	if err != nil {
		panic(err)
	}
	emu := graphtest.New(dir, graphtest.Options{})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer emu.Close()

	c, err := graph.NewClient(&tokenCred{token: "local"}, &graph.Options{Endpoint: emu.URL()})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	u, err := c.User(ctx, "cq-support@contoso.example")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.UPN, u.AccountEnabled, u.Department, u.SKUs)

	_, err = c.User(ctx, "nobody@contoso.example")
	var nf interface{ NotFound() bool }
	fmt.Println(asNotFound(err, &nf) && nf.NotFound())
	// Output:
	// cq-support@contoso.example false Microsoft Communication Application Instance [440eaaa8-b3e0-484b-a8be-62870b9ba70a]
	// true
}
