package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil"
)

// TestVersionOfPlainBuild builds the command with a plain go build, as a
// developer does, and checks that version names the checkout's commit.
func TestVersionOfPlainBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole command")
	}
	t.Parallel()
	goBin, gitBin := testutil.RequireProgram(t, "go"), testutil.RequireProgram(t, "git")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	run := func(dir, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		// GOFLAGS from the environment or go env -w (say -buildvcs=false)
		// would change what a plain build records.
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, stderr.String())
		}
		return string(out)
	}
	root := strings.TrimSpace(run(".", gitBin, "rev-parse", "--show-toplevel"))
	head := strings.TrimSpace(run(root, gitBin, "rev-parse", "HEAD"))
	dirty := strings.TrimSpace(run(root, gitBin, "status", "--porcelain")) != ""

	src := root
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		// In a git worktree .git is a file, and go stamps only a checkout
		// whose .git is a directory: build a clone of HEAD carrying the
		// worktree's changes instead.
		src = t.TempDir()
		run(root, gitBin, "clone", "-q", "--shared", "--no-checkout", root, src)
		run(src, gitBin, "checkout", "-q", "--detach", head)
		changed := run(root, gitBin, "diff", "-z", "--name-only", "HEAD")
		changed += run(root, gitBin, "ls-files", "-z", "--others", "--exclude-standard")
		for _, f := range strings.Split(changed, "\x00") {
			if f != "" {
				copyOrRemove(t, filepath.Join(root, f), filepath.Join(src, f))
			}
		}
	}

	bin := filepath.Join(t.TempDir(), "choria-broker")
	run(src, goBin, "build", "-o", bin, "./cmd/choria-broker")
	got := run(src, bin, "version")
	t.Logf("built in %s: %s", src, strings.TrimSpace(got))

	want := fmt.Sprintf("choria-broker devel-%s", head[:12])
	if dirty {
		want += "-dirty"
	}
	want += fmt.Sprintf(" (commit %s, ", head)
	if !strings.HasPrefix(got, want) {
		t.Fatalf("version of a plain go build printed %q, want it to start %q", got, want)
	}
}

// copyOrRemove makes dst match src, a file the worktree changed or deleted.
func copyOrRemove(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if os.IsNotExist(err) {
		if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
