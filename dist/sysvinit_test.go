package dist

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/dist/disttest"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// TestSysvinitScript drives dist/sysvinit/choria-broker through start,
// status, reload, restart and stop with the real broker, once with
// start-stop-daemon and once with the portable fallback. As root the
// broker runs as nobody (the script's user switch); otherwise as the
// caller. Its defaults file is the test's (the script's one rewritten line).
func TestSysvinitScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops brokers; runs in the full pass")
	}
	t.Parallel()
	t.Run("start-stop-daemon", func(t *testing.T) {
		t.Parallel()
		testSysvinit(t, testutil.RequireProgram(t, "start-stop-daemon"))
	})
	t.Run("portable", func(t *testing.T) {
		t.Parallel()
		testSysvinit(t, "")
	})
}

func testSysvinit(t *testing.T, ssd string) {
	dir, err := os.MkdirTemp("", "choria-broker-sysv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := disttest.DevEnv(t, filepath.Join(dir, "dev"))
	// A short lame duck, so that stop has finished long before its timeout.
	conf := read(t, env.BrokerConf) + "logfile = " + filepath.Join(dir, "log", "broker.log") + "\n" +
		"plugin.choria.network.lame_duck_duration = 2s\nplugin.choria.network.lame_duck_grace = 1s\n"
	if err := os.WriteFile(env.BrokerConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	runAs, uid := "", os.Getuid()
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		runAs, uid = "nobody", atoi(nobody.Uid)
		// The development ssldir is the test's: let nobody read it.
		if err := exec.Command("chmod", "-R", "a+rX", dir).Run(); err != nil {
			t.Fatal(err)
		}
	}
	const stopTimeout = 60
	pidfile, logfile := filepath.Join(dir, "run", "choria-broker.pid"), filepath.Join(dir, "log", "broker.log")
	defaults := filepath.Join(dir, "default")
	writeDefaults := func(config string) {
		t.Helper()
		text := fmt.Sprintf("DAEMON=%s\nCONFIG=%s\nBROKER_USER=%s\nBROKER_GROUP=\nPIDFILE=%s\nLOGFILE=%s\nSTOP_TIMEOUT=%d\nSTART_STOP_DAEMON=%s\n",
			disttest.Binary(t), config, runAs, pidfile, logfile, stopTimeout, ssd)
		if err := os.WriteFile(defaults, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeDefaults(env.BrokerConf)
	script := filepath.Join(dir, "choria-broker")
	text := strings.Replace(read(t, "sysvinit/choria-broker"), "/etc/default/$NAME", defaults, 2)
	if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(action string) (int, string) {
		t.Helper()
		cmd := exec.Command(script, action)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("%s: %v", action, err)
			}
			code = ee.ExitCode()
		}
		return code, string(out)
	}
	pid := func() int {
		t.Helper()
		data, err := os.ReadFile(pidfile)
		if err != nil {
			t.Fatalf("pidfile: %v", err)
		}
		return atoi(strings.TrimSpace(string(data)))
	}
	// Whatever happens, the broker the script started does not outlive the test.
	t.Cleanup(func() {
		if data, err := os.ReadFile(pidfile); err == nil {
			if p := atoi(strings.TrimSpace(string(data))); p > 0 && processName(p) == "choria-broker" {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	expect := func(action string, want int) string {
		t.Helper()
		code, out := run(action)
		if code != want {
			t.Fatalf("%s: exit %d, want %d\n%s\nlog:\n%s", action, code, want, out, readIfAny(logfile))
		}
		return out
	}

	expect("status", 3)
	expect("start", 0)
	first := pid()
	if out := expect("status", 0); !strings.Contains(out, strconv.Itoa(first)) {
		t.Errorf("status does not name pid %d: %s", first, out)
	}
	if got := processUID(t, first); got != uid {
		t.Errorf("broker runs as uid %d, want %d (%q)", got, uid, runAs)
	}
	nc := disttest.Connect(t, env, env.ClientPort, nil)

	expect("start", 0) // already running: nothing new
	if p := pid(); p != first {
		t.Errorf("second start replaced pid %d with %d", first, p)
	}

	expect("reload", 0)
	waitFor(t, "the reload in the log", func() bool { return strings.Contains(readIfAny(logfile), "certificates reloaded") })
	if !nc.IsConnected() {
		t.Error("reload dropped the client")
	}

	began := time.Now()
	expect("restart", 0)
	if took := time.Since(began); took > stopTimeout*time.Second/2 {
		t.Errorf("restart took %s: the broker did not leave on SIGUSR2 (lame duck) but was killed", took)
	}
	second := pid()
	if second == first || processName(first) == "choria-broker" {
		t.Errorf("restart kept the old broker (pids %d, %d)", first, second)
	}
	waitFor(t, "the client to be moved off by the lame duck", func() bool { return !nc.IsConnected() })
	disttest.Connect(t, env, env.ClientPort, nil)

	began = time.Now()
	expect("stop", 0)
	if took := time.Since(began); took > stopTimeout*time.Second/2 {
		t.Errorf("stop took %s: the broker did not leave on SIGUSR2 (lame duck) but was killed", took)
	}
	if processName(second) == "choria-broker" {
		t.Errorf("broker %d still running after stop", second)
	}
	if _, err := os.Stat(pidfile); err == nil {
		t.Error("pidfile left after stop")
	}
	expect("status", 3)
	expect("stop", 0) // not running: nothing to do

	// A broker.conf the broker refuses: start fails and says why.
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("plugin.choria.network.client_port = 42x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeDefaults(bad)
	code, out := run("start")
	if code == 0 || !strings.Contains(out, "client_port") {
		t.Errorf("start with a bad broker.conf: exit %d, want failure naming the setting\n%s", code, out)
	}
	expect("status", 3)
}

func readIfAny(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// processName is the kernel's name for a live pid, "" when there is none
// or it exited (a zombie: the init of a container may not reap it).
func processName(pid int) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil || strings.Contains(string(status), "\nState:\tZ") {
		return ""
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// processUID is pid's real user id.
func processUID(t *testing.T, pid int) int {
	t.Helper()
	for _, line := range strings.Split(read(t, fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			return atoi(f[1])
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(disttest.Wait)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, disttest.Wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
