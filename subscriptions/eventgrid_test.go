package subscriptions

import (
	"strings"
	"testing"
)

func TestEventGridURL(t *testing.T) {
	t.Parallel()
	const sub = "6a1f0d2e-8c4b-4b4e-9a57-2f3c4d5e6f70"
	const want = "EventGrid:?azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&partnertopic=tpe-graph&location=westeurope"
	tests := []struct {
		name, spec, want, wantErr string
	}{
		{"canonical", "azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&partnertopic=tpe-graph&location=westeurope", want, ""},
		{"any order and case", "Location=westeurope&PartnerTopic=tpe-graph&ResourceGroup=rg-tpe&AzureSubscriptionId=" + sub, want, ""},
		{"already a notification URL", want, want, ""},
		{"missing location", "azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&partnertopic=tpe-graph", "", "missing location"},
		{"missing partner topic", "azuresubscriptionid=" + sub + "&resourcegroup=rg-tpe&location=westeurope", "", "missing partnertopic"},
		{"empty value", "azuresubscriptionid=" + sub + "&resourcegroup=&partnertopic=tpe-graph&location=westeurope", "", "missing resourcegroup"},
		{"empty", "", "", "missing azuresubscriptionid"},
		{"unknown key", "azuresubscriptionid=" + sub + "&resourcegroup=rg&partnertopic=t&location=l&topic=x", "", `unknown key "topic"`},
		{"subscription id not a GUID", "azuresubscriptionid=mysub&resourcegroup=rg&partnertopic=t&location=l", "", "GUID"},
		{"value that would break the URL", "azuresubscriptionid=" + sub + "&resourcegroup=rg#x&partnertopic=t&location=l", "", "resourcegroup has characters"},
		{"key twice", "location=a&location=b", "", "location given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EventGridURL(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EventGridURL(%q) error = %v, want one mentioning %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("EventGridURL(%q) = %q, %v; want %q", tt.spec, got, err, tt.want)
			}
		})
	}
}
