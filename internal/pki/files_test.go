package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
)

// puppetDir writes an ssldir holding ca.pem and, for each name, its
// certificate and key, as Puppet or enroll leave it.
func puppetDir(t *testing.T, ca *CA, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "certs", "ca.pem"), CertsPEM(ca.Chain()...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		kp, err := ca.Issue(IssueOptions{Name: n, KeyType: "ec"})
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.Save(filepath.Join(dir, "certs", n+".pem"), filepath.Join(dir, "private_keys", n+".pem")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func brokerConfig(file string) *config.Config {
	cfg := config.Default()
	cfg.File, cfg.Identity = file, "broker.example.net"
	cfg.Security.Provider = "puppet"
	return cfg
}

// TestResolveFilesLocationRule: without plugin.choria.ssldir the broker
// takes its certificate from the enroll directory when one is there, else
// from Puppet's ssldir; with it, only from there.
func TestResolveFilesLocationRule(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	id := "broker.example.net"
	enrolled := puppetDir(t, ca, id)
	puppet := puppetDir(t, ca, id, "node1.example.net")
	bare := puppetDir(t, ca)    // Puppet ssldir of a host without the broker's certificate
	pending := puppetDir(t, ca) // enroll interrupted before the CA signed: key only
	kp, err := ca.Issue(IssueOptions{Name: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Save(filepath.Join(t.TempDir(), "c.pem"), filepath.Join(pending, "private_keys", id+".pem")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, ssldir, enroll, puppet, want string
	}{
		{"enrolled wins over a Puppet-managed host", "", enrolled, puppet, enrolled},
		{"enrolled on a host without Puppet", "", enrolled, filepath.Join(bare, "missing"), enrolled},
		{"not enrolled: Puppet's, as go-choria", "", filepath.Join(bare, "missing"), puppet, puppet},
		{"enroll pending: Puppet's", "", pending, puppet, puppet},
		{"nowhere: Puppet's", "", bare, filepath.Join(bare, "missing"), filepath.Join(bare, "missing")},
		{"ssldir set: only there", puppet, enrolled, enrolled, puppet},
	}
	for _, c := range cases {
		cfg := brokerConfig("/etc/choria/broker.conf")
		cfg.Security.SSLDir = c.ssldir
		f := resolveFiles(cfg, c.enroll, c.puppet)
		if want := filepath.Join(c.want, "certs", id+".pem"); f.Certificate != want {
			t.Errorf("%s: certificate %s, want %s", c.name, f.Certificate, want)
		}
		if f.Key != filepath.Join(c.want, "private_keys", id+".pem") || f.CA != filepath.Join(c.want, "certs", "ca.pem") || f.CRL != filepath.Join(c.want, "crl.pem") {
			t.Errorf("%s: key, CA and CRL not from the certificate's ssldir: %+v", c.name, f)
		}
		if c.ssldir == "" {
			if _, err := Load(f, id, time.Now()); (err == nil) != (c.want != bare && c.want != filepath.Join(bare, "missing")) {
				t.Errorf("%s: Load: %v", c.name, err)
			}
		}
	}

	// The enroll command writes where the broker looks first.
	cfg := brokerConfig("/etc/choria/broker.conf")
	if f, dir := enrollTarget(cfg, "", enrolled); dir != enrolled || f.Certificate != resolveFiles(cfg, enrolled, puppet).Certificate {
		t.Errorf("enroll writes %s in %s; run reads %s", f.Certificate, dir, resolveFiles(cfg, enrolled, puppet).Certificate)
	}
	cfg.Security.SSLDir = puppet
	if _, dir := enrollTarget(cfg, "", enrolled); dir != puppet {
		t.Errorf("enroll with plugin.choria.ssldir writes in %s", dir)
	}
	if _, dir := enrollTarget(cfg, "/elsewhere", enrolled); dir != "/elsewhere" {
		t.Errorf("enroll --dir writes in %s", dir)
	}
	cfg.Security.Provider = "file"
	cfg.Security.FileCertificate, cfg.Security.FileKey, cfg.Security.FileCA = "/c.pem", "/k.pem", "/ca.pem"
	if f, dir := enrollTarget(cfg, "", enrolled); dir != "" || f.Certificate != "/c.pem" || f.Key != "/k.pem" || f.CA != "/ca.pem" || f.CRL != "" {
		t.Errorf("enroll with provider file writes %+v in %q", f, dir)
	}
}

// TestMissingCertificateError: the broker without a certificate names
// every place it looked and the command that puts one there.
func TestMissingCertificateError(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	enroll, puppet := t.TempDir(), puppetDir(t, ca, "node1.example.net")
	cfg := brokerConfig("/srv/broker.conf")

	_, err := Load(resolveFiles(cfg, enroll, puppet), cfg.Identity, time.Now())
	want := "no certificate for broker.example.net: looked in " +
		enroll + "/certs/broker.example.net.pem (where choria-broker enroll keeps it) and " +
		puppet + "/certs/broker.example.net.pem (Puppet's ssldir); " +
		"get one from the Puppet CA with `choria-broker enroll --config /srv/broker.conf`, or set plugin.choria.ssldir to the ssldir that holds it"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}

	cfg.Security.SSLDir = puppet
	_, err = Load(resolveFiles(cfg, enroll, puppet), cfg.Identity, time.Now())
	if err == nil || !strings.Contains(err.Error(), "looked in "+puppet+"/certs/broker.example.net.pem (plugin.choria.ssldir); get one from the Puppet CA with `choria-broker enroll --config /srv/broker.conf`, which keeps it there") {
		t.Fatalf("with ssldir: %v", err)
	}

	cfg.Security.Provider = "file"
	cfg.Security.FileCertificate = filepath.Join(enroll, "broker.pem")
	cfg.Security.FileKey, cfg.Security.FileCA = filepath.Join(enroll, "broker.key"), filepath.Join(puppet, "certs", "ca.pem")
	_, err = Load(resolveFiles(cfg, enroll, puppet), cfg.Identity, time.Now())
	if err == nil || !strings.Contains(err.Error(), "looked in "+cfg.Security.FileCertificate+" (plugin.security.file.certificate); get one from the Puppet CA with `choria-broker enroll --config /srv/broker.conf`, which writes the plugin.security.file.* paths") {
		t.Fatalf("with provider file: %v", err)
	}

	// A certificate that is there but unreadable is reported as such, not as missing.
	if err := os.WriteFile(cfg.Security.FileCertificate, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(resolveFiles(cfg, enroll, puppet), cfg.Identity, time.Now()); err == nil || strings.Contains(err.Error(), "no certificate for") {
		t.Fatalf("bad certificate file: %v", err)
	}
}

// TestSubmittedMessage: the request's names, without an empty list.
func TestSubmittedMessage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		names []string
		want  string
	}{
		{nil, "submitted a certificate request for b.example.net (ECDSA P-256 key); sign it on the CA: puppetserver ca sign --certname b.example.net"},
		{[]string{" ", "b.example.net"}, "submitted a certificate request for b.example.net (ECDSA P-256 key); sign it on the CA: puppetserver ca sign --certname b.example.net"},
		{[]string{"nats.example.net", "127.0.0.1", "nats.example.net"}, "submitted a certificate request for b.example.net (ECDSA P-256 key, also named nats.example.net, 127.0.0.1); sign it on the CA: puppetserver ca sign --certname b.example.net"},
	} {
		if got := submitted("ECDSA P-256", "b.example.net", c.names); got != c.want {
			t.Errorf("names %q:\ngot  %s\nwant %s", c.names, got, c.want)
		}
	}
}

// TestEnrollAdvice: nothing to add when run reads what enroll kept; the
// settings to add when --dir put it elsewhere.
func TestEnrollAdvice(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	dir := puppetDir(t, ca, "broker.example.net")
	cfg := brokerConfig("/srv/broker.conf")
	cfg.Security.SSLDir = dir
	f, ssldir := EnrollTarget(cfg, "")
	if got, want := EnrollAdvice(cfg, f, ssldir), "choria-broker run --config /srv/broker.conf uses "+f.Certificate; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	other := t.TempDir()
	f, ssldir = EnrollTarget(cfg, other)
	got := EnrollAdvice(cfg, f, ssldir)
	if !strings.Contains(got, "plugin.choria.ssldir = "+other) || !strings.Contains(got, "plugin.security.provider = puppet") {
		t.Errorf("--dir elsewhere: %q", got)
	}
}
