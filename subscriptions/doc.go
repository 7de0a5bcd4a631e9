// Package subscriptions keeps the Graph change-notification subscriptions alive: the Keeper
// creates, renews and reauthorizes them (keeper.go, keeper_renew.go), answers lifecycle
// events as the worker's LifecycleHandler (lifecycle.go), and EventGridURL builds the
// Event Grid partner-topic target (eventgrid.go). It declares the Graph subscription API it
// consumes (subscriptions.go); internal/adapt fits the graph client to it.
package subscriptions
