package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/tpe-provisioner/tpe-provisioner/relay"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

func init() {
	commands["relay"] = command{
		summary: "receive Graph webhook posts (no Event Grid) and put them on the queue",
		run:     runRelay,
	}
}

func runRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM); without it the relay serves plain HTTP for a TLS-terminating ingress")
	keyFile := fs.String("tls-key", "", "TLS private key (PEM)")
	if err := c.bindGroups(fs, environ, groupTenant, groupTrust, groupRelay, groupLog, groupQueue); err != nil {
		return err
	}
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	if (*certFile == "") != (*keyFile == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither to serve plain HTTP behind a TLS-terminating ingress")
	}
	if err := c.Validate(needs{tenant: true, source: true, clientState: true}); err != nil {
		return err
	}
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	sender, closeSender, err := openSender(ctx, &c)
	if err != nil {
		return err
	}
	defer closeSender()

	h := relay.New(relay.Options{
		Trust:  worker.Trust{TenantID: c.TenantID, ClientState: c.ClientState},
		Logger: log,
		Enqueue: func(ctx context.Context, body []byte, messageID string) error {
			return servicebus.Send(ctx, sender, body, messageID)
		},
	})
	ln, err := net.Listen("tcp", c.RelayListen)
	if err != nil {
		return fmt.Errorf("TPE_RELAY_LISTEN %s: %w", c.RelayListen, err)
	}
	if *certFile != "" {
		if _, err := tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
			_ = ln.Close()
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	}
	srv := newServer(h)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("relay listening", "addr", ln.Addr().String(), "tls", *certFile != "")
	if *certFile != "" {
		err = srv.ServeTLS(ln, *certFile, *keyFile)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
