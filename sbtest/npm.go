package sbtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ensureModules runs "npm ci" in dir when its node_modules lacks rhea. Test binaries of
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

func installed(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "node_modules", "rhea", "package.json"))
	return err == nil
}
