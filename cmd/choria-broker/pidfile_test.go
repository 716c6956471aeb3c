package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// startSleep runs `sleep 60`, a process that SIGUSR2 would kill.
func startSleep(t *testing.T) (*exec.Cmd, chan error) {
	t.Helper()
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleep.Wait() }()
	t.Cleanup(func() {
		sleep.Process.Kill()
		<-done
	})
	return sleep, done
}

// TestLameDuckRefusesOtherProcess: a pid file naming a process that is not
// a choria-broker is refused, and that process is not signalled.
func TestLameDuckRefusesOtherProcess(t *testing.T) {
	t.Parallel()
	sleep, done := startSleep(t)
	pid := filepath.Join(t.TempDir(), "broker.pid")
	os.WriteFile(pid, []byte(strconv.Itoa(sleep.Process.Pid)+"\n"), 0o644)
	ld, out := command(t, "lameduck", "--pid", pid, "--wait", "5s")
	err := ld.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v: %s", err, out)
	}
	for _, want := range []string{pid, strconv.Itoa(sleep.Process.Pid), `"sleep 60"`, "not a choria-broker", "not signalled"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q: %s", want, out)
		}
	}
	select {
	case err := <-done:
		done <- err
		t.Fatalf("sleep ended: %v", err)
	default:
	}
	if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("sleep is gone: %v", err)
	}
}

// TestLameDuckStalePidFile: a pid file naming no process says so.
func TestLameDuckStalePidFile(t *testing.T) {
	t.Parallel()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	pid := filepath.Join(t.TempDir(), "broker.pid")
	os.WriteFile(pid, []byte(strconv.Itoa(gone.Process.Pid)+"\n"), 0o644)
	ld, out := command(t, "lameduck", "--pid", pid, "--wait", "5s")
	err := ld.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v: %s", err, out)
	}
	for _, want := range []string{pid, "not running", "stale"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q: %s", want, out)
		}
	}
	ld, out = command(t, "lameduck", "--pid", filepath.Join(t.TempDir(), "none.pid"))
	if err := ld.Run(); err == nil || !strings.Contains(out.String(), "none.pid: no such file") {
		t.Errorf("missing pid file: %v: %s", err, out)
	}
}

// TestRunPidFileOwned: a second run with the same --pid is refused while
// the first runs and leaves its file alone; on exit a broker removes the
// file only while it still holds its own pid.
func TestRunPidFileOwned(t *testing.T) {
	t.Parallel()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	pid := filepath.Join(t.TempDir(), "broker.pid")
	first, out := command(t, "run", "--config", env.BrokerConf, "--pid", pid)
	done := start(t, first).exited
	waitFor(t, out, "broker ready")
	firstPid := strconv.Itoa(first.Process.Pid) + "\n"

	second, out2 := command(t, "run", "--config", env.BrokerConf, "--pid", pid)
	err = second.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("second run: want a non-zero exit, got %v: %s", err, out2)
	}
	if !strings.Contains(out2.String(), "already running as pid "+strconv.Itoa(first.Process.Pid)) {
		t.Errorf("second run: %s", out2)
	}
	if data, _ := os.ReadFile(pid); string(data) != firstPid {
		t.Fatalf("pid file holds %q after the second run, want %q", data, firstPid)
	}

	// Another pid file, same port: this one fails on the port, and removes
	// only its own file.
	other := filepath.Join(t.TempDir(), "other.pid")
	third, out3 := command(t, "run", "--config", env.BrokerConf, "--pid", other)
	if err := third.Run(); err == nil {
		t.Fatalf("third run on a used port succeeded: %s", out3)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("third run left its pid file: %v", err)
	}
	if data, _ := os.ReadFile(pid); string(data) != firstPid {
		t.Fatalf("pid file holds %q after the third run, want %q", data, firstPid)
	}

	// Someone else took the file over: the first broker leaves it on exit.
	os.WriteFile(pid, []byte("1\n"), 0o644)
	first.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit 15s after SIGTERM\n%s", out)
	}
	if data, _ := os.ReadFile(pid); string(data) != "1\n" {
		t.Fatalf("pid file holds %q, want the other owner's", data)
	}
}
