package sbtest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstalledWantsEveryPinnedDependency(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", `{"dependencies": {"rhea": "3.0.5"}, "devDependencies": {"@azure/service-bus": "7.9.5"}}`)
	if installed(dir) {
		t.Fatal("installed with no node_modules")
	}
	write("node_modules/rhea/package.json", `{"version": "3.0.5"}`)
	if installed(dir) {
		t.Fatal("installed with @azure/service-bus missing (a node_modules from before it was added)")
	}
	write("node_modules/@azure/service-bus/package.json", `{"version": "7.9.4"}`)
	if installed(dir) {
		t.Fatal("installed with @azure/service-bus at another version than pinned")
	}
	write("node_modules/@azure/service-bus/package.json", `{"version": "7.9.5"}`)
	if !installed(dir) {
		t.Fatal("not installed with every pinned version present")
	}
}
