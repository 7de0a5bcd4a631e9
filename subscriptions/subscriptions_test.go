package subscriptions

import (
	"slices"
	"testing"
)

func TestSubscriptionResources(t *testing.T) {
	got := SubscriptionResources([]string{" 0B7E3C1A-2D4F-4A6B-8C9D-1E2F3A4B5C6D", "1c8f4d2b-3e5a-4b7c-9d0e-2f3a4b5c6d7e"})
	want := []string{"users", "groups/0b7e3c1a-2d4f-4a6b-8c9d-1e2f3a4b5c6d", "groups/1c8f4d2b-3e5a-4b7c-9d0e-2f3a4b5c6d7e"}
	if !slices.Equal(got, want) {
		t.Errorf("SubscriptionResources = %v, want %v", got, want)
	}
}
