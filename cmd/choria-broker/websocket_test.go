package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// appendConf adds lines to a configuration file.
func appendConf(t *testing.T, path, lines string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
}

// The programs as shipped: run with websocket_port, emulate and ping given
// --server wss://host:port, each with its own client certificate.
func TestWebsocketCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env, err := devenv.Prepare(dir, devenv.Options{ClientPort: testutil.FreePort(t), StatsOff: true})
	if err != nil {
		t.Fatal(err)
	}
	ws := testutil.FreePort(t)
	appendConf(t, env.BrokerConf, "plugin.choria.network.websocket_port = "+strconv.Itoa(ws)+"\n")
	url := "wss://127.0.0.1:" + strconv.Itoa(ws)

	broker, bout := command(t, "run", "--config", env.BrokerConf)
	start(t, broker)
	waitFor(t, bout, "Listening for websocket clients on wss://127.0.0.1:"+strconv.Itoa(ws))
	waitFor(t, bout, "broker ready")

	emu, eout := command(t, "emulate", "--dev", "--dev-dir", dir, "--server", url, "--nodes", "20")
	start(t, emu)
	waitFor(t, eout, "all 20 nodes connected")

	ping, pout := command(t, "ping", "--dev", "--dev-dir", dir, "--server", url, "--expect", "20", "--timeout", "20s")
	if err := runWithin(ping, 60*time.Second); err != nil {
		t.Fatalf("ping over websocket: %v\n%s\nbroker:\n%s", err, pout, bout)
	}
	if !strings.Contains(pout.String(), "20 replies") {
		t.Fatalf("ping output:\n%s", pout)
	}
}

// A malformed subject mapping stops run and fails preflight, naming the
// key by file:line: a side missing (config.load) and a destination the
// engine refuses (config.run, the check run makes).
func TestMappingErrorsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, lines, want string
	}{
		{"no destination", "plugin.choria.network.mapping.names = reg\nplugin.choria.network.mapping.reg.source = in.>\n",
			`:%d: plugin.choria.network.mapping.reg.destination: mapping "reg" is listed here but has no plugin.choria.network.mapping.reg.destination`},
		{"bad destination", "plugin.choria.network.mapping.names = reg\nplugin.choria.network.mapping.reg.source = in.*\nplugin.choria.network.mapping.reg.destination = out.{{wildcard(2)}}\n",
			`:%d: plugin.choria.network.mapping.reg.destination: the engine refuses "out.{{wildcard(2)}}" as the destination of "in.*"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(env.BrokerConf)
			if err != nil {
				t.Fatal(err)
			}
			// names is the first line added; the destination the last.
			first := strings.Count(string(data), "\n") + 1
			line := first
			if tc.name == "bad destination" {
				line = first + 2
			}
			appendConf(t, env.BrokerConf, tc.lines)
			want := env.BrokerConf + strings.Replace(tc.want, "%d", strconv.Itoa(line), 1)
			for _, args := range [][]string{{"run"}, {"preflight", "--measure", "10ms"}} {
				cmd, out := command(t, append(args, "--config", env.BrokerConf)...)
				err := runWithin(cmd, 60*time.Second)
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
					t.Fatalf("%s: want exit 1, got %v: %s", args[0], err, out)
				}
				// preflight wraps its lines at the width.
				if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
					t.Errorf("%s does not say %q:\n%s", args[0], want, out)
				}
			}
		})
	}
}
