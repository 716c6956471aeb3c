package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// The test binary doubles as choria-broker, so tests drive the real
// command, signals included.
func TestMain(m *testing.M) {
	if os.Getenv("CHORIA_BROKER_TEST_AS_MAIN") == "1" {
		// Tests point the default certificate locations at scratch dirs.
		if d := os.Getenv("CHORIA_BROKER_TEST_ENROLL_SSLDIR"); d != "" {
			config.EnrollSSLDir = d
		}
		if d := os.Getenv("CHORIA_BROKER_TEST_PUPPET_SSLDIR"); d != "" {
			config.PuppetSSLDir = func() string { return d }
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(t *testing.T, args ...string) (*exec.Cmd, *testutil.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CHORIA_BROKER_TEST_AS_MAIN=1")
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

// running is a command a test started. exited receives its exit status
// once; kill ends it with SIGKILL (no clean shutdown) and waits for it, at
// most 10 s. The test's end kills it too.
type running struct {
	cmd    *exec.Cmd
	exited chan error
	kill   func()
}

func start(t *testing.T, cmd *exec.Cmd) *running {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &running{cmd: cmd, exited: make(chan error, 1)}
	gone := make(chan struct{})
	go func() {
		r.exited <- cmd.Wait()
		close(gone)
	}()
	var once sync.Once
	r.kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Error("killed command did not exit")
			}
		})
	}
	t.Cleanup(r.kill)
	return r
}

func TestVersion(t *testing.T) {
	t.Parallel()
	cmd, out := command(t, "version")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(out.String(), "choria-broker ") {
		t.Fatalf("version printed %q", out)
	}
}

func TestRunBadConfig(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "broker.conf")
	os.WriteFile(file, []byte("plugin.choria.broker_network = true\nplugin.choria.network.client_port = 42x\n"), 0o644)
	cmd, out := command(t, "run", "--config", file)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v: %s", err, out)
	}
	if !strings.Contains(out.String(), file+":2: plugin.choria.network.client_port") {
		t.Fatalf("error does not name file, line and key: %s", out)
	}
}

func TestRunUnknownFlag(t *testing.T) {
	t.Parallel()
	cmd, out := command(t, "run", "--confg", "x")
	if err := cmd.Run(); err == nil || !strings.Contains(out.String(), "unknown flag: --confg") {
		t.Fatalf("want an unknown flag error, got %v: %s", err, out)
	}
}

// TestRunSignals runs the real command on a development config: SIGHUP
// reloads, SIGTERM stops it cleanly with exit 0 and frees its ports.
func TestRunSignals(t *testing.T) {
	t.Parallel()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := command(t, "run", "--config", env.BrokerConf)
	done := start(t, cmd).exited
	waitFor(t, out, "broker ready")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, out, "certificates reloaded")
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
	for _, port := range []int{env.ClientPort, env.StatsPort} {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d still held: %v", port, err)
		}
		l.Close()
	}
}

func waitFor(t *testing.T, out *testutil.Buffer, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 20s:\n%s", text, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLameDuckCommand starts the broker with --pid and stops it with
// `choria-broker lameduck`: it exits 0 after the lame duck duration.
func TestLameDuckCommand(t *testing.T) {
	t.Parallel()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(env.BrokerConf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("plugin.choria.network.lame_duck_duration = 3s\nplugin.choria.network.lame_duck_grace = 1s\n")
	f.Close()
	pid := filepath.Join(t.TempDir(), "broker.pid")
	cmd, out := command(t, "run", "--config", env.BrokerConf, "--pid", pid)
	done := start(t, cmd).exited
	waitFor(t, out, "broker ready")
	ld, ldOut := command(t, "lameduck", "--pid", pid, "--wait", "30s")
	if err := ld.Run(); err != nil {
		t.Fatalf("lameduck: %v\n%s\nbroker:\n%s", err, ldOut, out)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("broker exit: %v\n%s", err, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("broker still running")
	}
	if !strings.Contains(out.String(), "entering lame duck mode") || !strings.Contains(ldOut.String(), "exited") {
		t.Fatalf("broker:\n%s\nlameduck:\n%s", out, ldOut)
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Fatal("pid file left behind")
	}
}
