package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// runWithin runs cmd and kills it if it is still running after d.
func runWithin(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %s", d)
	}
}

// TestNumericFlagsRefused runs each bad value through the real command: it
// exits non-zero with one line naming the flag, and prints or makes
// nothing before it.
func TestNumericFlagsRefused(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.conf")
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"--nodes", []string{"preflight", "--config", missing, "--nodes", "-5"}},
		{"--nodes", []string{"preflight", "--config", missing, "--nodes", "0"}},
		{"--nodes", []string{"preflight", "--config", missing, "--nodes", "20000000"}},
		{"--nodes", []string{"preflight", "--config", missing, "--nodes", "5x"}},
		{"--measure", []string{"preflight", "--config", missing, "--measure", "-1s"}},
		{"--measure", []string{"preflight", "--config", missing, "--measure", "0s"}},
		{"--measure", []string{"preflight", "--config", missing, "--measure", "2h"}},
		{"--wait", []string{"lameduck", "--pid", missing, "--wait", "-1s"}},
		{"--wait", []string{"lameduck", "--pid", missing, "--wait", "0s"}},
		{"--wait", []string{"enroll", "--config", missing, "--wait", "-1s"}},
		{"--renew-before", []string{"enroll", "--config", missing, "--renew-before", "-24h"}},
		{"--client-port", []string{"dev", "--client-port", "70000"}},
		{"--client-port", []string{"dev", "--client-port", "0"}},
		{"--client-port", []string{"dev", "--client-port", "-1"}},
		{"--stats-port", []string{"dev", "--stats-port", "70000"}},
		{"--stats-port", []string{"dev", "--stats-port", "-1"}},
	} {
		dir := filepath.Join(t.TempDir(), "dev")
		args := tc.args
		if args[0] == "dev" {
			args = append(args, "--dir", dir)
		}
		cmd, out := command(t, args...)
		err := runWithin(cmd, 30*time.Second)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Errorf("%v: want a non-zero exit, got %v: %s", args, err, out)
			continue
		}
		text := out.String()
		if !strings.HasPrefix(text, "choria-broker: ") || strings.Count(text, "\n") != 1 || !strings.Contains(text, tc.flag) {
			t.Errorf("%v: want one error line naming %s, got:\n%s", args, tc.flag, text)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v: made %s before refusing", args, dir)
		}
	}
}

// TestDevStatsOffAndNextSteps: dev --stats-port 0 runs without monitoring,
// as stats_port = 0 does, and with --dir the next steps it prints carry
// --dev-dir, so they work as printed.
func TestDevStatsOffAndNextSteps(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "my dev")
	cmd, out := command(t, "dev", "--dir", dir, "--client-port", strconv.Itoa(testutil.FreePort(t)), "--stats-port", "0")
	done := start(t, cmd).exited
	waitFor(t, out, "broker ready")
	text := out.String()
	if !strings.Contains(text, "monitor=off") || strings.Contains(text, "curl") || !strings.Contains(text, "monitoring is off") {
		t.Errorf("monitoring not off:\n%s", text)
	}
	cfg, err := config.Load(filepath.Join(dir, "broker.conf"))
	if err != nil || cfg.StatsPort != 0 {
		t.Fatalf("broker.conf stats_port: %v %v", cfg, err)
	}
	for _, step := range []string{"emulate --dev --dev-dir '" + dir + "' --nodes 1000", "ping --dev --dev-dir '" + dir + "' --expect 1000"} {
		if !strings.Contains(text, "choria-broker "+step) {
			t.Errorf("next steps lack %q:\n%s", step, text)
		}
	}
	// The printed ping as the shell reads it, without the fleet it expects.
	args := []string{"ping", "--dev", "--dev-dir", dir, "-t", "1"}
	pc, pout := command(t, args...)
	if err := runWithin(pc, 30*time.Second); err != nil || !strings.Contains(pout.String(), "0 replies") {
		t.Errorf("ping as printed: %v: %s", err, pout)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit 15s after SIGTERM\n%s", out)
	}
}

// TestFleetConfigNotFound: ping and emulate name the file they looked for
// and the flag that chose it, and how to make it.
func TestFleetConfigNotFound(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nodev")
	missing := filepath.Join(t.TempDir(), "missing.conf")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"ping", "--dev", "--dev-dir", dir}, []string{"--dev-dir " + dir, filepath.Join(dir, "client.conf") + " not found", "choria-broker dev --dir " + dir}},
		{[]string{"emulate", "--dev", "--dev-dir", dir}, []string{"--dev-dir " + dir, filepath.Join(dir, "server.conf") + " not found", "choria-broker dev --dir " + dir}},
		{[]string{"ping", "--config", missing}, []string{"--config " + missing, "not found"}},
		{[]string{"emulate", "--config", missing}, []string{"--config " + missing, "not found"}},
	} {
		cmd, out := command(t, tc.args...)
		err := runWithin(cmd, 30*time.Second)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Errorf("%v: want a non-zero exit, got %v: %s", tc.args, err, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q: %s", tc.args, w, out)
			}
		}
		if strings.Contains(out.String(), "broker.conf") {
			t.Errorf("%v: names broker.conf: %s", tc.args, out)
		}
	}
}
