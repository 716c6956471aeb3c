// Package puppetca runs a real Puppet CA (Debian's puppetserver 7) for
// tests. Each CA lives in its own scratch directory on its own loopback
// port, never touches /etc/puppet* or /var/lib/puppet*, and is stopped and
// removed when the test ends, so several may run at once.
//
// Install puppetserver with .ci/install-puppetserver.sh. Without it Start
// skips the test, unless CI=true, where it fails it.
package puppetca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// ServerCertname is the certname of the CA server's own cert. It is not
	// "localhost" so tests may generate a cert named localhost.
	ServerCertname = "puppetca.test"

	// Host is the name the CA's HTTPS endpoint is reached by; the server's
	// cert carries it (and IP 127.0.0.1) as SANs.
	Host = "localhost"

	// StartTimeout bounds the server start unless the env
	// PUPPETCA_START_TIMEOUT (a Go duration) says otherwise. A start takes
	// ~20 s of CPU; on a busy 2-core machine the wall time has been seen
	// above 90 s.
	StartTimeout = 240 * time.Second

	cliTimeout  = 2 * time.Minute
	crlTimeout  = 30 * time.Second
	termTimeout = 15 * time.Second
	killTimeout = 10 * time.Second
	portTries   = 3

	// Debian's puppetserver layout. The system config is only read.
	installDir     = "/usr/share/puppetserver"
	jarPath        = installDir + "/puppetserver.jar"
	jrubyLib       = "/usr/share/jruby/lib"
	systemConfDir  = "/etc/puppet/puppetserver/conf.d"
	systemServices = "/etc/puppet/puppetserver/services.d"
	rubyLoadPath   = "/usr/lib/puppetserver/ruby/vendor_ruby"
	vendoredGems   = "/usr/lib/puppetserver/vendored-jruby-gems"
)

// CA is a running Puppet CA owned by one test.
type CA struct {
	dir      string // scratch root, removed at cleanup
	confFile string // puppet.conf used by the server and the ca CLI
	ssldir   string
	cadir    string
	logFile  string
	cli      string // puppetserver wrapper
	java     string
	port     int

	// mu serialises ca CLI runs: they share the ssldir and the CLI takes no
	// lock of its own.
	mu sync.Mutex

	// the running server, for Stop and Restart
	pid  int
	done chan struct{}
}

// Stop stops the CA server (its files stay), to test a CA that went away.
func (c *CA) Stop(t testing.TB) {
	t.Helper()
	if c.done == nil {
		return
	}
	if err := stopGroup(c.pid, c.done); err != nil {
		t.Fatalf("puppetca: stopping: %v", err)
	}
	c.done = nil
}

// Restart starts a stopped CA again on the same port.
func (c *CA) Restart(t testing.TB) {
	t.Helper()
	if err := c.startServer(t); err != nil {
		t.Fatalf("puppetca: restarting: %v\n--- tail of %s ---\n%s", err, c.logFile, tail(c.logFile, 60))
	}
}

// Start runs a real Puppet CA for the test and stops it, removing its
// files, when the test ends. It skips the test when puppetserver is not
// installed, unless the env CI=true, in which case it fails the test.
// Call it from the test's goroutine.
func Start(t testing.TB) *CA {
	t.Helper()

	c := &CA{}
	var missing []string
	var err error
	if c.cli, err = exec.LookPath("puppetserver"); err != nil {
		missing = append(missing, "puppetserver")
	}
	if c.java, err = exec.LookPath("java"); err != nil {
		missing = append(missing, "java")
	}
	if _, err = os.Stat(jarPath); err != nil {
		missing = append(missing, jarPath)
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("puppetca: %s not installed (run .ci/install-puppetserver.sh)", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	// Not t.TempDir: subtest names may contain '#' or '$', which puppet.conf
	// treats as a comment or an interpolation.
	dir, err := os.MkdirTemp("", "puppetca-")
	if err != nil {
		t.Fatalf("puppetca: %v", err)
	}
	// Registered first so it runs after the server is stopped.
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("puppetca: removing %s: %v", dir, err)
		}
	})
	if strings.ContainsAny(dir, " \t#{$,") {
		t.Fatalf("puppetca: scratch dir %q has characters puppet.conf cannot hold; set TMPDIR", dir)
	}

	c.dir = dir
	c.confFile = filepath.Join(dir, "confdir", "puppet.conf")
	c.ssldir = filepath.Join(dir, "ssl")
	c.cadir = filepath.Join(dir, "ca")
	c.logFile = filepath.Join(dir, "puppetserver.log")
	for _, sub := range []string{"confdir", "code", "var", "run", "log", "tmp", "conf.d", "services.d"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("puppetca: %v", err)
		}
	}
	if err := c.writeStaticConfig(); err != nil {
		t.Fatalf("puppetca: %v", err)
	}

	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("puppetca: %v", err)
		}
		c.port = port
		if err := c.writePortConfig(); err != nil {
			t.Fatalf("puppetca: %v", err)
		}
		if try == 1 {
			// Offline: makes the root+intermediate CA and the server's cert.
			c.ca(t, "setup")
		}
		err = c.startServer(t)
		if err == nil {
			return c
		}
		// Another process may take the port between our probe and the bind.
		if errors.Is(err, errPortInUse) && try < portTries {
			t.Logf("puppetca: port %d taken, retrying", port)
			continue
		}
		t.Fatalf("puppetca: %v\n--- tail of %s ---\n%s", err, c.logFile, tail(c.logFile, 60))
	}
}

// URL is the CA's HTTPS base URL, e.g. https://localhost:18140.
func (c *CA) URL() string { return "https://" + net.JoinHostPort(Host, strconv.Itoa(c.port)) }

// Port is the CA's HTTPS port on 127.0.0.1.
func (c *CA) Port() int { return c.port }

// SSLDir is a Puppet-agent-style ssldir: certs/ca.pem (intermediate then
// root), certs/<name>.pem, private_keys/<name>.pem and crl.pem (the CRLs of
// both CAs). puppetserver itself keeps crl.pem in step with the CA's CRL.
// It also holds the CA server's own cert, ServerCertname.
func (c *CA) SSLDir() string { return c.ssldir }

// CACertPath is the CA chain file, certs/ca.pem in SSLDir.
func (c *CA) CACertPath() string { return filepath.Join(c.ssldir, "certs", "ca.pem") }

// CRLPath is crl.pem in SSLDir.
func (c *CA) CRLPath() string { return filepath.Join(c.ssldir, "crl.pem") }

// CertPath is where Generate puts name's cert.
func (c *CA) CertPath(name string) string { return filepath.Join(c.ssldir, "certs", name+".pem") }

// KeyPath is where Generate puts name's private key.
func (c *CA) KeyPath(name string) string {
	return filepath.Join(c.ssldir, "private_keys", name+".pem")
}

// SignedCertPath is the CA's own copy of name's cert; the only copy on disk
// for certs signed by Sign.
func (c *CA) SignedCertPath(name string) string { return filepath.Join(c.cadir, "signed", name+".pem") }

// LogPath is the server's log file.
func (c *CA) LogPath() string { return c.logFile }

// Generate makes a key and a cert for name, signed by the intermediate CA,
// at CertPath and KeyPath. altNames are added as SANs besides name itself;
// IP literals become IP SANs, other names DNS SANs, and "DNS:"/"IP:"
// prefixes are kept.
func (c *CA) Generate(t testing.TB, name string, altNames ...string) {
	t.Helper()
	checkName(t, name)
	args := []string{"generate", "--certname", name}
	if len(altNames) > 0 {
		sans := make([]string, 0, len(altNames))
		for _, a := range altNames {
			switch {
			case strings.HasPrefix(a, "DNS:"), strings.HasPrefix(a, "IP:"):
				sans = append(sans, a)
			case net.ParseIP(a) != nil:
				// The CLI would otherwise make it a DNS SAN.
				sans = append(sans, "IP:"+a)
			default:
				sans = append(sans, "DNS:"+a)
			}
		}
		args = append(args, "--subject-alt-names", strings.Join(sans, ","))
	}
	c.ca(t, args...)
	for _, p := range []string{c.CertPath(name), c.KeyPath(name)} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("puppetca: generate %s: %v", name, err)
		}
	}
}

// Sign signs the pending CSR for name, e.g. one submitted over HTTP to
// URL()/puppet-ca/v1/certificate_request/<name>. The cert is then at
// SignedCertPath and URL()/puppet-ca/v1/certificate/<name>.
func (c *CA) Sign(t testing.TB, name string) {
	t.Helper()
	checkName(t, name)
	c.ca(t, "sign", "--certname", name)
	if _, err := os.Stat(c.SignedCertPath(name)); err != nil {
		t.Fatalf("puppetca: sign %s: %v", name, err)
	}
}

// Revoke revokes name's cert and returns once CRLPath lists its serial.
func (c *CA) Revoke(t testing.TB, name string) {
	t.Helper()
	checkName(t, name)
	cert, err := readCert(c.SignedCertPath(name))
	if err != nil {
		t.Fatalf("puppetca: revoke %s: %v", name, err)
	}
	c.ca(t, "revoke", "--certname", name)

	// puppetserver rewrites the ssldir's crl.pem just after the CA's CRL;
	// wait for it so callers can read CRLPath at once.
	deadline := time.Now().Add(crlTimeout)
	for {
		ok, err := crlLists(c.CRLPath(), cert.SerialNumber)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("puppetca: revoke %s: serial %s not in %s after %v (last error: %v)",
				name, cert.SerialNumber, c.CRLPath(), crlTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ca runs `puppetserver ca <args> --config <puppet.conf>`, failing the test
// on error.
func (c *CA) ca(t testing.TB, args ...string) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	full := append([]string{"ca"}, args...)
	full = append(full, "--config", c.confFile)
	cmd := exec.CommandContext(ctx, c.cli, full...)
	cmd.Dir = c.dir
	// Own group so a timeout kills the wrapper's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("puppetca: puppetserver %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return string(out)
}

var errPortInUse = errors.New("port in use")

// startServer starts the JVM directly (the puppetserver wrapper hardcodes
// /etc and /run paths and switches user) and waits until it serves.
func (c *CA) startServer(t testing.TB) error {
	t.Helper()
	logf, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	offset, _ := logf.Seek(0, io.SeekEnd)
	fmt.Fprintf(logf, "=== puppetca: starting on port %d at %s\n", c.port, time.Now().Format(time.RFC3339))

	d := c.dir
	args := []string{
		// Measured: C1 only, SerialGC and JRuby compile-mode off halve the
		// start CPU (~22 s vs ~53 s). 512m leaves headroom; 128m OOMs.
		"-Xmx512m",
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-XX:-UsePerfData", // no /tmp/hsperfdata_* left behind
		"-XX:+CrashOnOutOfMemoryError",
		"-XX:ErrorFile=" + filepath.Join(d, "log", "hs_err_%p.log"),
		"-Djava.io.tmpdir=" + filepath.Join(d, "tmp"),
		"-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger",
		"-Djruby.lib=" + jrubyLib,
		"-jar", jarPath,
		"--config", filepath.Join(d, "conf.d"),
		"--bootstrap-config", filepath.Join(d, "services.d"),
	}
	cmd := exec.Command(c.java, args...)
	cmd.Dir = installDir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting java: %w", err)
	}
	logf.Close() // the child has its own copy

	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	pid := cmd.Process.Pid
	c.pid, c.done = pid, done
	t.Cleanup(func() {
		if err := stopGroup(pid, done); err != nil {
			t.Errorf("puppetca: stopping puppetserver (pid %d): %v", pid, err)
		}
	})

	timeout := StartTimeout
	if v := os.Getenv("PUPPETCA_START_TIMEOUT"); v != "" {
		if timeout, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("PUPPETCA_START_TIMEOUT: %w", err)
		}
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err = c.waitReady(ctx, done)
	if err == nil {
		t.Logf("puppetca: CA on port %d ready after %v (%s)", c.port, time.Since(began).Round(100*time.Millisecond), c.dir)
		return nil
	}
	select {
	case <-done:
		log := readFrom(c.logFile, offset)
		if bytes.Contains(log, []byte("Address already in use")) || bytes.Contains(log, []byte("BindException")) {
			return errPortInUse
		}
		return fmt.Errorf("puppetserver exited during start: %v", waitErr)
	default:
		return err
	}
}

// waitReady polls the unauthenticated status endpoint, verifying the
// server's cert against the new CA.
func (c *CA) waitReady(ctx context.Context, done <-chan struct{}) error {
	pool := x509.NewCertPool()
	pemBytes, err := os.ReadFile(c.CACertPath())
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("no certs in %s", c.CACertPath())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: Host}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}

	start := time.Now()
	var last error
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return errors.New("puppetserver exited")
		case <-ctx.Done():
			return fmt.Errorf("puppetserver not ready after %v (last: %v)", time.Since(start).Round(time.Second), last)
		case <-tick.C:
		}
		resp, err := client.Get(c.URL() + "/status/v1/simple")
		if err != nil {
			last = err
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "running" {
			return nil
		}
		last = fmt.Errorf("status %d: %q", resp.StatusCode, body)
	}
}

// stopGroup ends the server's process group: SIGTERM, then SIGKILL, each
// wait bounded.
func stopGroup(pid int, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	default:
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(termTimeout):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-done:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("still running %v after SIGKILL", killTimeout)
	}
}

func (c *CA) writePortConfig() error {
	d := c.dir
	// The ca CLI parses this with a simple INI reader: no quotes, no spaces.
	conf := fmt.Sprintf(`[main]
confdir = %[1]s/confdir
codedir = %[1]s/code
vardir = %[1]s/var
rundir = %[1]s/run
logdir = %[1]s/log
ssldir = %[1]s/ssl
cadir = %[1]s/ca
certname = %[2]s
dns_alt_names = %[3]s,IP:127.0.0.1
server = %[3]s
serverport = %[4]d
ca_server = %[3]s
ca_port = %[4]d
`, d, ServerCertname, Host, c.port)
	if err := os.WriteFile(c.confFile, []byte(conf), 0o644); err != nil {
		return err
	}
	web := fmt.Sprintf("webserver: {\n  client-auth: want\n  ssl-host: \"127.0.0.1\"\n  ssl-port: %d\n}\n", c.port)
	return os.WriteFile(filepath.Join(d, "conf.d", "webserver.conf"), []byte(web), 0o644)
}

// writeStaticConfig writes puppetserver's HOCON config; every path points
// into the scratch dir.
func (c *CA) writeStaticConfig() error {
	d := c.dir
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	p := func(sub string) string { return q(filepath.Join(d, sub)) }

	files := map[string]string{
		"conf.d/global.conf": fmt.Sprintf("global: {\n  logging-config: %s\n}\n", p("logback.xml")),
		"conf.d/puppetserver.conf": fmt.Sprintf(`jruby-puppet: {
  ruby-load-path: [%s]
  gem-home: %s
  gem-path: [%s, %s]
  server-conf-dir: %s
  server-code-dir: %s
  server-var-dir: %s
  server-run-dir: %s
  server-log-dir: %s
  # one instance: starts faster and a CA needs no more
  max-active-instances: 1
  compile-mode: off
}
http-client: {}
profiler: { enabled: false }
product: { check-for-updates: false }
metrics: {
  server-id: localhost
  registries: { puppetserver: { reporters: { jmx: { enabled: false } } } }
}
`, q(rubyLoadPath), p("var/jruby-gems"), p("var/jruby-gems"), q(vendoredGems),
			p("confdir"), p("code"), p("var"), p("run"), p("log")),
		// ca generate puts the SANs in the CSR, which the CA refuses by default.
		"conf.d/ca.conf": "certificate-authority: {\n  allow-subject-alt-names: true\n}\n",
		"logback.xml": `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5p [%t] [%c{2}] %m%n</pattern></encoder>
  </appender>
  <root level="info"><appender-ref ref="STDOUT"/></root>
</configuration>
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	// auth.conf and web-routes.conf must match the installed services, so
	// they come from the package.
	for _, name := range []string{"auth.conf", "web-routes.conf"} {
		if err := copyFile(filepath.Join(systemConfDir, name), filepath.Join(d, "conf.d", name)); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(systemServices)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := copyFile(filepath.Join(systemServices, e.Name()), filepath.Join(d, "services.d", e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkName(t testing.TB, name string) {
	t.Helper()
	// The CLI splits --certname on commas; Puppet wants lower case.
	if name == "" || strings.ContainsAny(name, ",/ ") || strings.ToLower(name) != name {
		t.Fatalf("puppetca: invalid certname %q", name)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

// readCRLs parses every CRL in a PEM file; Puppet keeps one per CA.
func readCRLs(path string) ([]*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.RevocationList
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no CRL", path)
	}
	return out, nil
}

func crlLists(path string, serial *big.Int) (bool, error) {
	crls, err := readCRLs(path)
	if err != nil {
		return false, err
	}
	for _, crl := range crls {
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(serial) == 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

func readFrom(path string, offset int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, 16<<20))
	return b
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
