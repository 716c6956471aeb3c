package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

func TestSecondsFlag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "5s": 5 * time.Second, "500ms": 500 * time.Millisecond, "1.5": 1500 * time.Millisecond, " 60 ": time.Minute} {
		var d time.Duration
		if err := (secondsFlag{&d}).Set(in); err != nil || d != want {
			t.Errorf("%q: got %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"-1s", "0", "-4", "0s", "abc", "5x", "", "1e12"} {
		var d time.Duration
		if err := (secondsFlag{&d}).Set(in); err == nil {
			t.Errorf("%q accepted as %v", in, d)
		}
	}
}

// TestPingFlags runs the real command against a broker: --timeout takes
// whole seconds and durations; negative values are refused naming the flag.
func TestPingFlags(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	devbroker.Start(t, env)
	for _, tc := range []struct {
		args []string
		ok   bool
		want string
	}{
		{[]string{"--timeout", "1"}, true, "0 replies"},
		{[]string{"--timeout", "1s"}, true, "0 replies"},
		{[]string{"-t", "500ms"}, true, "0 replies"},
		{[]string{"--timeout", "-1s"}, false, "--timeout"},
		{[]string{"--timeout", "5x"}, false, "--timeout"},
		{[]string{"--expect", "-4"}, false, "--expect"},
	} {
		cmd, out := command(t, append([]string{"ping", "--config", env.ClientConf}, tc.args...)...)
		err := cmd.Run()
		if tc.ok && err != nil {
			t.Errorf("ping %v: %v: %s", tc.args, err, out)
			continue
		}
		if !tc.ok {
			if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() == 0 {
				t.Errorf("ping %v: want a non-zero exit, got %v: %s", tc.args, err, out)
			}
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("ping %v printed %q; want %q", tc.args, out, tc.want)
		}
	}
}

// TestEmulateNumbersRefused: bad numbers are refused naming the flag,
// before anything else is printed.
func TestEmulateNumbersRefused(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	for _, args := range [][]string{{"--nodes", "-5"}, {"--nodes", "0"}, {"--connect-concurrency", "-1"}, {"--connect-concurrency", "0"}} {
		cmd, out := command(t, append([]string{"emulate", "--config", env.ServerConf}, args...)...)
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Errorf("emulate %v: want a non-zero exit, got %v: %s", args, err, out)
			continue
		}
		if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], args[0]) {
			t.Errorf("emulate %v printed %q; want one line naming %s", args, out, args[0])
		}
	}
}

func TestEmulateIdentityRefused(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cmd, out := command(t, "emulate", "--config", env.ServerConf, "--nodes", "2", "--identity", "alpha")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v: %s", err, out)
	}
	if !strings.Contains(out.String(), `--identity "alpha"`) || !strings.Contains(out.String(), "%d") {
		t.Fatalf("error does not name the flag and %%d: %s", out)
	}
}
