package servicebus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// Config says which queue to use and how to authenticate.
type Config struct {
	// ConnectionString (SERVICEBUS_CONNECTION_STRING) wins over Namespace; its key never
	// appears in an error.
	ConnectionString string
	// Namespace (SERVICEBUS_NAMESPACE) is used with the Entra ID default credential.
	Namespace string
	Queue     string
}

// NewClient returns a client on the configured namespace.
func NewClient(c Config) (*azservicebus.Client, error) {
	if c.ConnectionString != "" {
		client, err := azservicebus.NewClientFromConnectionString(c.ConnectionString, nil)
		if err != nil {
			return nil, fmt.Errorf("SERVICEBUS_CONNECTION_STRING: %w", Redact(err, c.ConnectionString))
		}
		return client, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("Entra ID credential for Service Bus: %w", err)
	}
	return azservicebus.NewClient(c.Namespace, cred, nil)
}

// OpenSender opens a sender on the configured queue; close releases it and its client.
func OpenSender(ctx context.Context, c Config) (sender *azservicebus.Sender, close func(), err error) {
	client, err := NewClient(c)
	if err != nil {
		return nil, nil, err
	}
	sender, err = client.NewSender(c.Queue, nil)
	if err != nil {
		_ = client.Close(ctx)
		return nil, nil, fmt.Errorf("Service Bus sender: %w", err)
	}
	return sender, func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = sender.Close(cctx)
		_ = client.Close(cctx)
	}, nil
}

// OpenSourceAndSender opens the worker's Source on the configured queue and a sender on the
// same queue (for the fan-out); close releases both and their client.
func OpenSourceAndSender(ctx context.Context, c Config, o Options) (*Source, *azservicebus.Sender, func(), error) {
	client, err := NewClient(c)
	if err != nil {
		return nil, nil, nil, err
	}
	sender, err := client.NewSender(c.Queue, nil)
	if err != nil {
		_ = client.Close(ctx)
		return nil, nil, nil, fmt.Errorf("Service Bus sender: %w", err)
	}
	src := NewSource(func(context.Context) (*azservicebus.Receiver, error) {
		return client.NewReceiverForQueue(c.Queue, nil)
	}, o)
	return src, sender, func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = sender.Close(cctx)
		_ = client.Close(cctx)
	}, nil
}

// Redact keeps a connection string's key out of an error the SDK may have quoted it in.
func Redact(err error, cs string) error {
	msg := err.Error()
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(strings.TrimSpace(k), "SharedAccessKey") && v != "" {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return fmt.Errorf("%s", msg)
}
