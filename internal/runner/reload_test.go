package runner

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/logging"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// startNetwork runs a network-only runner from env's broker.conf, with
// its logger, until the test ends.
func startNetwork(t *testing.T, env *devenv.Env) (*Runner, *logging.Logger) {
	t.Helper()
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	log, err := logging.New(cfg.LogFile, cfg.LogLevel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	r, err := New(cfg, log.Logger)
	if err != nil {
		t.Fatal(err)
	}
	r.Logging = log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("runner did not stop within 30s")
		}
	})
	select {
	case <-r.Network.Ready():
	case err := <-done:
		t.Fatalf("runner stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("broker not ready within 30s")
	}
	return r, log
}

func appendConf(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logLine returns the first line of log holding every part, or "".
func logLine(log string, parts ...string) string {
	for _, l := range strings.Split(log, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l
		}
	}
	return ""
}

// TestReloadAppliesAndNamesRestarts: SIGHUP after certname_whitelist,
// client_port and logfile changed applies the whitelist to new
// connections (a connected one keeps its role), moves the log, and says
// that client_port needs a restart, each naming file:line.
func TestReloadAppliesAndNamesRestarts(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	dir := t.TempDir()
	oldLog, newLog := filepath.Join(dir, "old.log"), filepath.Join(dir, "new.log")
	appendConf(t, env.BrokerConf, "logfile = "+oldLog+"\nplugin.choria.stats_port = 0\n")
	r, _ := startNetwork(t, env)

	alice := devbroker.IssueTLS(t, env, "alice.example.net")
	before, err := nats.Connect(r.Network.ClientURL(), nats.Secure(alice), nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if got := r.Network.ConnectionsByRole(); got[authz.Node] != 1 {
		t.Fatalf("roles before the reload: %v, want alice as a node", got)
	}

	conf := readLog(t, env.BrokerConf)
	lines := len(strings.Split(strings.TrimSuffix(conf, "\n"), "\n"))
	appendConf(t, env.BrokerConf, "plugin.choria.security.certname_whitelist = \\.mcollective$, ^alice\\.example\\.net$\n"+
		"plugin.choria.network.client_port = "+itoa(testutil.FreePort(t))+"\n"+
		"logfile = "+newLog+"\n")
	where := func(n int) string { return "where=" + env.BrokerConf + ":" + itoa(lines+n) }

	r.Reload()

	old := readLog(t, oldLog)
	if logLine(old, "setting applied, logging continues in the new file", "key=logfile", "new="+newLog, where(3)) == "" {
		t.Errorf("the old log does not say where logging went:\n%s", old)
	}
	logs := readLog(t, newLog)
	for _, want := range [][]string{
		{"level=INFO", "SIGHUP: setting applied", "key=logfile", where(3)},
		{"level=INFO", "setting applied to new connections; connected clients keep the role they were given", "key=plugin.choria.security.certname_whitelist", where(1)},
		{"level=WARN", "needs a restart", "key=plugin.choria.network.client_port", "old=" + itoa(env.ClientPort), where(2)},
		{"certificates reloaded"},
	} {
		if logLine(logs, want...) == "" {
			t.Errorf("no line with %q in the new log:\n%s", want, logs)
		}
	}
	// Keys written twice are warned about, before the log moves.
	if logLine(old, "level=WARN", env.BrokerConf+":"+itoa(lines+3)+": logfile: set again here, first at "+env.BrokerConf+":"+itoa(lines-1)) == "" {
		t.Errorf("no warning about logfile set twice:\n%s", old)
	}

	after, err := nats.Connect(r.Network.ClientURL(), nats.Secure(alice), nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if got := r.Network.ConnectionsByRole(); got[authz.Client] != 1 || got[authz.Node] != 1 {
		t.Errorf("roles after the reload: %v, want the new connection a client and the old one still a node", got)
	}

	// A second reload changes nothing new: the restart is still needed,
	// the applied settings are not reported again.
	r.Reload()
	logs = readLog(t, newLog)
	if n := strings.Count(logs, "key=plugin.choria.network.client_port"); n != 2 {
		t.Errorf("client_port named %d times after two reloads, want 2:\n%s", n, logs)
	}
	if n := strings.Count(logs, "key=plugin.choria.security.certname_whitelist"); n != 1 {
		t.Errorf("certname_whitelist reported %d times, want once:\n%s", n, logs)
	}
}

// TestReloadBrokenConfigKeepsEverything: a configuration that no longer
// loads changes nothing, and the error names file:line; the certificates
// are still reread.
func TestReloadBrokenConfigKeepsEverything(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	logFile := filepath.Join(t.TempDir(), "broker.log")
	appendConf(t, env.BrokerConf, "logfile = "+logFile+"\nplugin.choria.stats_port = 0\n")
	r, _ := startNetwork(t, env)
	conf := readLog(t, env.BrokerConf)
	lines := len(strings.Split(strings.TrimSuffix(conf, "\n"), "\n"))
	appendConf(t, env.BrokerConf, "plugin.choria.security.certname_whitelist = ^alice\\.example\\.net$\nplugin.choria.network.max_connections = 9223372036854775807\n")

	r.Reload()

	logs := readLog(t, logFile)
	if logLine(logs, "level=ERROR", "configuration not reloaded, every setting stays as it is",
		env.BrokerConf+":"+itoa(lines+2)+": plugin.choria.network.max_connections", "must be 1-10000000") == "" {
		t.Errorf("no error naming the line:\n%s", logs)
	}
	if strings.Contains(logs, "setting applied") {
		t.Errorf("a setting was applied from a configuration that does not load:\n%s", logs)
	}
	if logLine(logs, "certificates reloaded") == "" {
		t.Errorf("certificates not reloaded:\n%s", logs)
	}
	alice := devbroker.IssueTLS(t, env, "alice.example.net")
	nc, err := nats.Connect(r.Network.ClientURL(), nats.Secure(alice), nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := r.Network.ConnectionsByRole(); got[authz.Node] != 1 {
		t.Errorf("roles: %v, want alice still a node", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
