// Package disttest holds what the tests of dist/ (service files, Debian
// package, collectd) and puppet/ (the Puppet module) share: the broker
// program built once, server certificates on a development CA, a broker
// process run from a configuration file, and a client connected to it.
package disttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// Wait bounds every wait of these tests: a broker starting or stopping, a
// client connecting.
const Wait = 20 * time.Second

var (
	buildMu  sync.Mutex
	buildDir string
	binary   string
)

// Main runs the tests, then removes the program Binary built.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// RepoRoot is the repository's top directory, found from the test's own.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "cmd", "choria-broker")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (with cmd/choria-broker) not found above the test's directory")
		}
		dir = parent
	}
}

// Binary builds ./cmd/choria-broker the first time it is called and
// returns the program's path; the directory holding it is readable by
// every user, so that an init script may run it as another one.
func Binary(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if binary != "" {
		return binary
	}
	dir, err := os.MkdirTemp("", "choria-broker-dist-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "choria-broker")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/choria-broker")
	cmd.Dir = RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("go build: %v\n%s", err, out)
	}
	buildDir, binary = dir, path
	return binary
}

// DevEnv makes a development CA, ssldir and broker.conf in dir.
func DevEnv(t testing.TB, dir string) *devenv.Env {
	t.Helper()
	env, err := devenv.Prepare(dir, devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// IssueServer writes a certificate and key for a broker named name into
// env's ssldir, in Puppet's layout, valid for localhost and 127.0.0.1.
func IssueServer(t testing.TB, env *devenv.Env, name string) {
	t.Helper()
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Save(env.PKI.CertFile(name), env.PKI.KeyFile(name)); err != nil {
		t.Fatal(err)
	}
}

// Process is a broker program started by a test.
type Process struct {
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan struct{}
	err  error
}

// StartBroker runs `choria-broker run --config config` until Stop or the
// end of the test.
func StartBroker(t testing.TB, config string) *Process {
	t.Helper()
	p := &Process{out: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t), "run", "--config", config)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Exited reports whether the broker has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output is what the broker printed so far.
func (p *Process) Output() string { return p.out.String() }

// Stop sends SIGTERM and waits for the broker to exit; it kills it after Wait.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(Wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("broker did not stop within %s of SIGTERM\n%s", Wait, p.Output())
	}
}

// Connect connects a Choria client (env's client certificate) to the
// broker on 127.0.0.1:port, retrying while the broker starts. alive, when
// given, says whether the broker still runs, to fail early if it exited.
func Connect(t testing.TB, env *devenv.Env, port int, alive func() (bool, string)) *nats.Conn {
	t.Helper()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	tc := devbroker.TLS(t, env, env.PKI.Client)
	deadline := time.Now().Add(Wait)
	for {
		nc, err := nats.Connect(url, nats.Secure(tc), nats.Timeout(3*time.Second), nats.NoReconnect(), nats.Name("dist test"))
		if err == nil {
			t.Cleanup(nc.Close)
			return nc
		}
		if alive != nil {
			if ok, out := alive(); !ok {
				t.Fatalf("broker exited before a client could connect to %s: %v\n%s", url, err, out)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client connection to %s within %s: %v", url, Wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Alive is Connect's liveness check for a Process.
func (p *Process) Alive() (bool, string) { return !p.Exited(), p.Output() }

// ReplaceLine replaces the line of text starting with prefix by line; it
// fails the test when there is none.
func ReplaceLine(t testing.TB, text, prefix, line string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = line
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("no line starting with %q", prefix)
	return ""
}
