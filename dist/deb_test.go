package dist

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/dist/disttest"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

const (
	debVersionIn  = "v1.2.3-4-gabcdef0" // what git describe says
	debVersionOut = "1.2.3+4.gabcdef0"  // what Debian sorts after 1.2.3
)

// debFiles are the package's files from the repository, byte for byte.
var debFiles = map[string]string{
	"etc/choria/broker.conf":                             "deb/broker.conf",
	"lib/systemd/system/choria-broker.service":           "systemd/choria-broker.service",
	"etc/init/choria-broker.conf":                        "upstart/choria-broker.conf",
	"etc/init.d/choria-broker":                           "sysvinit/choria-broker",
	"etc/default/choria-broker":                          "sysvinit/choria-broker.default",
	"etc/logrotate.d/choria-broker":                      "deb/logrotate",
	"usr/share/doc/choria-broker/examples/collectd.conf": "collectd/choria-broker.conf",
}

var debConffiles = []string{
	"/etc/choria/broker.conf", "/etc/default/choria-broker", "/etc/init.d/choria-broker",
	"/etc/init/choria-broker.conf", "/etc/logrotate.d/choria-broker",
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebPackage builds the package with `make deb` (nfpm from the Go
// module proxy) and checks what it holds: control fields, the version made
// from git describe, conffiles, files equal to dist/'s, maintainer scripts
// that parse, a default broker.conf the broker accepts, and a program that
// reports the version. Under CI=true as root (or with
// CHORIA_BROKER_TEST_DPKG=1), it then installs, runs and removes it.
func TestDebPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package; runs in the full pass")
	}
	t.Parallel()
	makeProg := testutil.RequireProgram(t, "make")
	testutil.RequireProgram(t, "dpkg-deb")
	out := t.TempDir()
	run(t, makeProg, "-C", disttest.RepoRoot(t), "deb", "DEB_DIR="+out, "VERSION="+debVersionIn)
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v, want one .deb", debs)
	}
	deb := debs[0]

	t.Run("contents", func(t *testing.T) { debContents(t, deb) })
	t.Run("install", func(t *testing.T) {
		if os.Geteuid() != 0 || !(testutil.InCI() || os.Getenv("CHORIA_BROKER_TEST_DPKG") == "1") {
			t.Skip("installs the package on this machine: only as root under CI=true or CHORIA_BROKER_TEST_DPKG=1")
		}
		debInstall(t, deb)
	})
}

func debContents(t *testing.T, deb string) {
	arch := runtime.GOARCH
	if dpkg, err := exec.LookPath("dpkg"); err == nil {
		arch = strings.TrimSpace(run(t, dpkg, "--print-architecture"))
	}
	if want := fmt.Sprintf("choria-broker_%s_%s.deb", debVersionOut, arch); filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}
	fields := run(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends")
	for _, want := range []string{"Package: choria-broker", "Version: " + debVersionOut, "Architecture: " + arch, "Depends: passwd"} {
		if !strings.Contains(fields, want+"\n") {
			t.Errorf("control lacks %q:\n%s", want, fields)
		}
	}

	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctl)
	conffiles := strings.Fields(read(t, filepath.Join(ctl, "conffiles")))
	slices.Sort(conffiles)
	if !slices.Equal(conffiles, debConffiles) {
		t.Errorf("conffiles %v, want %v", conffiles, debConffiles)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if got, want := read(t, filepath.Join(ctl, script)), read(t, filepath.Join("deb", script)); got != want {
			t.Errorf("%s differs from dist/deb/%s", script, script)
		}
		run(t, "sh", "-n", filepath.Join(ctl, script))
	}

	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	for inDeb, src := range debFiles {
		if read(t, filepath.Join(root, inDeb)) != read(t, src) {
			t.Errorf("%s differs from dist/%s", inDeb, src)
		}
	}
	for path, mode := range map[string]os.FileMode{"usr/bin/choria-broker": 0o755, "etc/init.d/choria-broker": 0o755, "etc/choria/broker.conf": 0o640} {
		if fi, err := os.Stat(filepath.Join(root, path)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), mode, err)
		}
	}
	if v := run(t, filepath.Join(root, "usr/bin/choria-broker"), "version"); !strings.Contains(v, debVersionIn) {
		t.Errorf("choria-broker version: %q, want %s", v, debVersionIn)
	}
	cfg, err := config.Load(filepath.Join(root, "etc/choria/broker.conf"))
	if err != nil {
		t.Fatalf("default broker.conf: %v", err)
	}
	if len(cfg.Warnings) > 0 || !cfg.BrokerNetwork || cfg.Network.ClientPort != 4222 || cfg.Security.SSLDir != "/var/lib/choria-broker/ssl" {
		t.Errorf("default broker.conf: warnings %q, broker_network %v, client port %d, ssldir %q",
			cfg.Warnings, cfg.BrokerNetwork, cfg.Network.ClientPort, cfg.Security.SSLDir)
	}
}

// debInstall installs the package on this machine, runs the broker through
// the installed init script as the package's choria user with a
// certificate where the package expects it, then removes and purges it,
// checking each step leaves what Debian expects and nothing else.
func debInstall(t *testing.T, deb string) {
	if err := exec.Command("dpkg-query", "-W", "choria-broker").Run(); err == nil {
		t.Skip("choria-broker is installed on this machine already; not touching it")
	}
	_, err := user.Lookup("choria")
	userExisted := err == nil
	t.Cleanup(func() {
		if pid := strings.TrimSpace(readIfAny("/var/run/choria-broker/choria-broker.pid")); pid != "" {
			_ = exec.Command("kill", "-KILL", pid).Run()
		}
		if exec.Command("dpkg-query", "-W", "choria-broker").Run() == nil {
			_ = exec.Command("dpkg", "-P", "choria-broker").Run()
		}
		if !userExisted {
			_ = exec.Command("userdel", "choria").Run()
			_ = exec.Command("groupdel", "choria").Run()
		}
	})
	dpkg := func(args ...string) {
		t.Helper()
		out := run(t, "dpkg", args...)
		if strings.Contains(strings.ToLower(out), "warning") {
			t.Errorf("dpkg %s warned:\n%s", strings.Join(args, " "), out)
		}
	}

	dpkg("-i", deb)
	if v := run(t, "choria-broker", "version"); !strings.Contains(v, debVersionIn) {
		t.Errorf("choria-broker version: %q", v)
	}
	conffiles := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "choria-broker")
	for _, f := range debConffiles {
		if !strings.Contains(conffiles, " "+f+" ") {
			t.Errorf("%s is not a conffile of the installed package:\n%s", f, conffiles)
		}
	}
	u, err := user.Lookup("choria")
	if err != nil {
		t.Fatalf("no choria user after install: %v", err)
	}
	if passwd := run(t, "getent", "passwd", "choria"); !strings.HasSuffix(strings.TrimSpace(passwd), ":/usr/sbin/nologin") || atoi(u.Uid) >= 1000 {
		t.Errorf("choria is not a system user without a login shell: %s", passwd)
	}
	if g, err := user.LookupGroup("choria"); err != nil || g.Gid != u.Gid {
		t.Errorf("choria's group is not choria: %v", err)
	}
	for path, want := range map[string]string{
		"/etc/choria/broker.conf": "640 root choria", "/var/lib/choria-broker": "750 choria choria", "/var/log/choria": "750 choria choria",
	} {
		if got := strings.TrimSpace(run(t, "stat", "-c", "%a %U %G", path)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}

	// Run it: the package's init script, user, directories and default
	// paths, with a certificate in the ssldir broker.conf names.
	dir := t.TempDir()
	env := disttest.DevEnv(t, filepath.Join(dir, "dev"))
	const name = "dpkg-test.example.net"
	disttest.IssueServer(t, env, name)
	ssl := "/var/lib/choria-broker/ssl"
	for dst, src := range map[string]string{
		"certs/ca.pem": env.PKI.CAFile(), "crl.pem": env.PKI.CRLFile(),
		"certs/" + name + ".pem": env.PKI.CertFile(name), "private_keys/" + name + ".pem": env.PKI.KeyFile(name),
	} {
		if err := pki.WriteFile(filepath.Join(ssl, dst), []byte(read(t, src)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "chown", "-R", "choria:choria", ssl)
	port := testutil.FreePort(t)
	conf := fmt.Sprintf("identity = %s\nplugin.choria.broker_network = true\nplugin.choria.network.listen_address = 127.0.0.1\n"+
		"plugin.choria.network.client_port = %d\nplugin.choria.stats_port = 0\nplugin.choria.use_srv = false\n"+
		"plugin.choria.ssldir = %s\nlogfile = /var/log/choria/broker.log\n"+
		"plugin.choria.network.lame_duck_duration = 2s\nplugin.choria.network.lame_duck_grace = 1s\n", name, port, ssl)
	if err := os.WriteFile("/etc/choria/broker.conf", []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	initd := func(action string) string {
		t.Helper()
		cmd := exec.Command("/etc/init.d/choria-broker", action)
		// Where systemd runs, Debian's init-functions would hand the script to systemctl.
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "_SYSTEMCTL_SKIP_REDIRECT=1"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("/etc/init.d/choria-broker %s: %v\n%s\nlog:\n%s", action, err, out, readIfAny("/var/log/choria/broker.log"))
		}
		return string(out)
	}
	initd("start")
	pid := atoi(strings.TrimSpace(read(t, "/var/run/choria-broker/choria-broker.pid")))
	if uid := processUID(t, pid); uid != atoi(u.Uid) {
		t.Errorf("broker runs as uid %d, want choria (%s)", uid, u.Uid)
	}
	disttest.Connect(t, env, port, nil)
	initd("stop")
	if processName(pid) == "choria-broker" {
		t.Error("broker still running after stop")
	}

	dpkg("-r", "choria-broker")
	if _, err := os.Stat("/usr/bin/choria-broker"); err == nil {
		t.Error("/usr/bin/choria-broker left after dpkg -r")
	}
	if _, err := os.Stat("/etc/choria/broker.conf"); err != nil {
		t.Error("dpkg -r removed the conffile; only a purge should")
	}
	if st := run(t, "dpkg-query", "-W", "-f=${db:Status-Abbrev}", "choria-broker"); strings.TrimSpace(st) != "rc" {
		t.Errorf("after dpkg -r the package is %q, want rc (config files remain)", st)
	}

	dpkg("-P", "choria-broker")
	for _, path := range append(debConffiles, "/var/lib/choria-broker", "/var/log/choria", "/var/run/choria-broker", "/etc/choria") {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s left after dpkg -P", path)
		}
	}
	if links, _ := filepath.Glob("/etc/rc?.d/*choria-broker"); len(links) > 0 {
		t.Errorf("runlevel links left after purge: %v", links)
	}
	if links, _ := filepath.Glob("/etc/systemd/system/*/choria-broker.service"); len(links) > 0 {
		t.Errorf("systemd links left after purge: %v", links)
	}
	if err := exec.Command("dpkg-query", "-W", "choria-broker").Run(); err == nil {
		t.Error("package still known to dpkg after purge")
	}
}
