package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/dist/disttest"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

func TestMain(m *testing.M) { disttest.Main(m) }

// The lame duck a stop waits for by default (lame_duck_duration 30s plus
// lame_duck_grace 2s) and the open files 50 000 nodes need (the broker
// asks for max_connections + 1024).
const (
	lameDuckDefault = 32 * time.Second
	noFileNeeded    = 50_000 + 1024
)

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// unitDirectives are the key=value lines of a systemd unit's section;
// repeated keys keep every value.
func unitDirectives(text, section string) map[string][]string {
	out := map[string][]string{}
	in := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			in = line == "["+section+"]"
		case in:
			k, v, _ := strings.Cut(line, "=")
			out[k] = append(out[k], v)
		}
	}
	return out
}

// acceptsArgs runs the broker with a service file's arguments plus --help:
// the command line parses (no unknown command or flag) without starting it.
func acceptsArgs(t *testing.T, args []string) {
	t.Helper()
	out, err := exec.Command(disttest.Binary(t), append(args, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("choria-broker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestSystemdUnit: the unit passes systemd-analyze verify and scores as
// well hardened, runs the broker as choria with room for 50 000 nodes, is
// restarted on failure, reloads with SIGHUP and stops through lame duck
// with time for it; nothing in it hides the Puppet ssldir.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	text := read(t, "systemd/choria-broker.service")
	svc := unitDirectives(text, "Service")
	one := func(key string) string {
		t.Helper()
		if len(svc[key]) != 1 {
			t.Fatalf("[Service] %s: %q, want exactly one", key, svc[key])
		}
		return svc[key][0]
	}
	for key, want := range map[string]string{
		"User": "choria", "Group": "choria", "Restart": "on-failure",
		"KillSignal": "SIGUSR2", "ExecReload": "/bin/kill -HUP $MAINPID",
		"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true",
	} {
		if got := one(key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if n, err := strconv.Atoi(one("LimitNOFILE")); err != nil || n < noFileNeeded {
		t.Errorf("LimitNOFILE=%s, want at least %d", one("LimitNOFILE"), noFileNeeded)
	}
	if d, err := time.ParseDuration(one("TimeoutStopSec")); err != nil || d <= lameDuckDefault {
		t.Errorf("TimeoutStopSec=%s, want more than the default lame duck (%s)", one("TimeoutStopSec"), lameDuckDefault)
	}
	// ProtectSystem=strict leaves /etc and /var/lib readable; these would not.
	for _, key := range []string{"InaccessiblePaths", "TemporaryFileSystem", "RootDirectory", "RootImage", "PrivateUsers"} {
		if len(svc[key]) > 0 {
			t.Errorf("%s=%q could hide the Puppet ssldir from the broker", key, svc[key])
		}
	}
	args := strings.Fields(one("ExecStart"))
	if args[0] != "/usr/bin/choria-broker" || strings.Join(args[1:], " ") != "run --config /etc/choria/broker.conf" {
		t.Errorf("ExecStart=%s", one("ExecStart"))
	}
	acceptsArgs(t, args[1:])

	analyze := testutil.RequireProgram(t, "systemd-analyze")
	// verify checks that ExecStart's program exists: point it at a real one.
	unit := filepath.Join(t.TempDir(), "choria-broker.service")
	text = disttest.ReplaceLine(t, text, "ExecStart=", "ExecStart="+disttest.Binary(t)+" "+strings.Join(args[1:], " "))
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure 0 (sandboxed) to 10 (none); 2.0 and below is "OK".
	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0: %v\n%s", err, out)
	}
}

// upstartStanzas are the stanzas of init(5) (upstart 1.x); anything else
// stops upstart from loading the job.
var upstartStanzas = map[string]bool{
	"exec": true, "script": true, "pre-start": true, "post-start": true, "pre-stop": true, "post-stop": true,
	"start": true, "stop": true, "manual": true, "task": true, "respawn": true, "expect": true,
	"kill": true, "normal": true, "reload": true, "description": true, "author": true, "version": true,
	"emits": true, "usage": true, "console": true, "env": true, "export": true, "instance": true,
	"umask": true, "nice": true, "oom": true, "chroot": true, "chdir": true, "limit": true,
	"setuid": true, "setgid": true, "apparmor": true, "cgroup": true, "end": true,
}

// TestUpstartJob: every line of the job is an upstart stanza; it starts
// and stops with the runlevels, respawns, runs the broker in the
// foreground as choria with room for 50 000 nodes, and stops it through
// lame duck with time for it.
func TestUpstartJob(t *testing.T) {
	t.Parallel()
	stanzas := map[string]string{}
	inScript := false
	for i, line := range strings.Split(read(t, "upstart/choria-broker.conf"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if inScript {
			inScript = line != "end script"
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		if !upstartStanzas[word] {
			t.Errorf("line %d: %q is not an upstart stanza", i+1, word)
		}
		if strings.HasSuffix(line, "script") && word != "end" {
			inScript = true
		}
		switch word {
		case "start", "stop", "kill", "respawn", "limit":
			// two-word stanzas: "start on", "kill timeout", "limit nofile", …
			w2, r2, _ := strings.Cut(rest, " ")
			if word == "respawn" && w2 == "" {
				stanzas["respawn"] = ""
				continue
			}
			stanzas[word+" "+w2] = r2
		default:
			stanzas[word] = rest
		}
	}
	for _, s := range []string{"description", "start on", "stop on", "respawn", "exec"} {
		if _, ok := stanzas[s]; !ok {
			t.Errorf("no %q stanza", s)
		}
	}
	if _, ok := stanzas["expect"]; ok {
		t.Error(`"expect" set: the broker does not fork, upstart would track the wrong process`)
	}
	for key, want := range map[string]string{"setuid": "choria", "setgid": "choria", "kill signal": "USR2"} {
		if stanzas[key] != want {
			t.Errorf("%s %q, want %q", key, stanzas[key], want)
		}
	}
	if f := strings.Fields(stanzas["limit nofile"]); len(f) != 2 || atoi(f[0]) < noFileNeeded || atoi(f[1]) < noFileNeeded {
		t.Errorf("limit nofile %q, want soft and hard at least %d", stanzas["limit nofile"], noFileNeeded)
	}
	if s := atoi(stanzas["kill timeout"]); time.Duration(s)*time.Second <= lameDuckDefault {
		t.Errorf("kill timeout %q, want more than the default lame duck (%s)", stanzas["kill timeout"], lameDuckDefault)
	}
	args := strings.Fields(stanzas["exec"])
	if len(args) == 0 || args[0] != "/usr/bin/choria-broker" || strings.Join(args[1:], " ") != "run --config /etc/choria/broker.conf" {
		t.Fatalf("exec %q", stanzas["exec"])
	}
	acceptsArgs(t, args[1:])
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
