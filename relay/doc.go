// Package relay is the HTTPS intake for Graph webhooks where Event Grid is not used: it
// answers the validation handshake, keeps only the notification items that carry our
// clientState and tenant (worker.Forwardable), and puts them on the queue through the
// Enqueue function it is given before it answers 202.
package relay
