package sbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ensureModules runs "npm ci" in dir when its node_modules lacks a pinned dependency. Test binaries of
// several packages may start at once, so the install runs under an exclusive file lock and
// is skipped by whoever finds it done.
func ensureModules(ctx context.Context, dir string) error {
	if installed(dir) {
		return nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".npm-ci.lock"))
	if err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	defer unlock()
	if installed(dir) {
		return nil
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w: %s", dir, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// installed reports whether node_modules in dir holds every dependency (and dev
// dependency) of package.json at the version it pins (package.json pins exact versions), so a node_modules from before a
// dependency was added or upgraded is installed again.
func installed(dir string) bool {
	var pkg struct {
		Dependencies    map[string]string `json:"dependencies"`
		DevDependencies map[string]string `json:"devDependencies"` // the conformance test's client
	}
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil || json.Unmarshal(raw, &pkg) != nil || len(pkg.Dependencies) == 0 {
		return false
	}
	deps := map[string]string{}
	for _, m := range []map[string]string{pkg.Dependencies, pkg.DevDependencies} {
		for name, version := range m {
			deps[name] = version
		}
	}
	for name, want := range deps {
		var dep struct {
			Version string `json:"version"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json"))
		if err != nil || json.Unmarshal(raw, &dep) != nil || dep.Version != want {
			return false
		}
	}
	return true
}
