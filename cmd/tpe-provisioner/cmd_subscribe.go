package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/subscriptions"
)

func init() {
	commands["subscribe"] = command{
		summary: "create or renew the Graph change-notification subscriptions (--list, --delete for operators)",
		exits: []exitCode{
			{1, "also: --delete was not confirmed on the terminal (nothing deleted)"},
			{2, "also: --delete off a terminal without --yes (nothing deleted)"},
		},
		run: runSubscribe,
	}
}

func runSubscribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("subscribe", flag.ContinueOnError)
	list := fs.Bool("list", false, "list our subscriptions and their expiry")
	del := fs.Bool("delete", false, "delete our subscriptions: no notification arrives until the next subscribe (asks on a terminal, needs --yes otherwise)")
	var yes bool
	yesFlag(fs, &yes)
	out := outputFormatFlag(fs, "table")
	if err := c.bindGroups(fs, environ, groupGraph, groupTenant, groupTrust, groupPolicy, groupSubscriptions, groupLog); err != nil {
		return err
	}
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	if err := c.Validate(needs{graph: true}); err != nil {
		return err
	}
	target, err := notificationURL(&c)
	if err != nil {
		return err
	}
	if target == "" {
		return fmt.Errorf("TPE_EVENT_GRID: set the Graph partner topic (azuresubscriptionid=...&resourcegroup=...&partnertopic=...&location=...), or TPE_WEBHOOK_URL for the relay")
	}
	if c.ClientState == "" && !*list && !*del {
		return fmt.Errorf("TPE_CLIENT_STATE: set a random secret (e.g. `openssl rand -base64 32`); notifications must echo it and the worker rejects those that do not")
	}
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	g, err := newGraphClient(&c, log, nil)
	if err != nil {
		return err
	}
	k, err := subscriptions.NewKeeper(adapt.Subscriptions{Client: g}, subscriptions.KeeperOptions{
		Resources:       subscriptions.SubscriptionResources(c.ScopeGroups),
		NotificationURL: target,
		ClientState:     c.ClientState,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	switch {
	case *del:
		subs, err := k.List(ctx)
		if err != nil {
			return err
		}
		if len(subs) == 0 {
			fmt.Fprintln(stderr, "no subscriptions of ours to delete")
			return nil
		}
		if err := confirm(yes, "subscribe --delete", fmt.Sprintf("our %d Graph subscription(s)", len(subs)), stderr); err != nil {
			return err
		}
		if err := k.Delete(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "subscriptions deleted")
		return nil
	case *list:
		subs, err := k.List(ctx)
		if err != nil {
			return err
		}
		return printSubscriptions(stdout, *out, subs)
	}
	subs, err := k.Ensure(ctx)
	if err != nil {
		return err
	}
	return printSubscriptions(stdout, *out, subs)
}

// subscriptionJSON is one subscription as -o json prints it.
type subscriptionJSON struct {
	ID                 string    `json:"id"`
	Resource           string    `json:"resource"`
	ChangeType         string    `json:"changeType"`
	NotificationURL    string    `json:"notificationUrl"`
	ExpirationDateTime time.Time `json:"expirationDateTime"`
}

func printSubscriptions(w io.Writer, output string, subs []subscriptions.Subscription) error {
	if output == "json" {
		out := make([]subscriptionJSON, 0, len(subs))
		for _, s := range subs {
			out = append(out, subscriptionJSON{s.ID, s.Resource, s.ChangeType, s.NotificationURL, s.ExpirationDateTime.UTC()})
		}
		return printJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRESOURCE\tCHANGE TYPE\tEXPIRES\tIN")
	for _, s := range subs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Resource, s.ChangeType,
			s.ExpirationDateTime.UTC().Format(time.RFC3339), time.Until(s.ExpirationDateTime).Round(time.Minute))
	}
	return tw.Flush()
}
