package preflight

import (
	"context"
	"crypto"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

func TestPKIFiles(t *testing.T) {
	t.Parallel()
	s := newSSL(t, sslOptions{})
	rs := run(t, pkiFiles{}, s.env(t))
	expect(t, item(t, rs, "certificate"), Pass, "CN=broker.example.net", "ECDSA P-256")
	expect(t, item(t, rs, "key"), Pass, "belongs to the certificate")
	expect(t, item(t, rs, "ca"), Pass, "1 CA certificate")

	t.Run("identity not in ssldir", func(t *testing.T) {
		// A broken ssldir: the broker looks for its identity's files, the
		// ssldir holds another certname's.
		rs := run(t, pkiFiles{}, s.env(t, "identity = nats1.example.net"))
		r := item(t, rs, "certificate")
		expect(t, r, Fail, "nats1.example.net.pem: file does not exist")
		if !strings.Contains(r.Fix, "certificates there: broker.example.net") {
			t.Errorf("fix does not list the ssldir's certificates: %q", r.Fix)
		}
		expect(t, item(t, rs, "key"), Fail, "does not exist")
	})
	t.Run("wrong key", func(t *testing.T) {
		other := newSSL(t, sslOptions{})
		data, _ := os.ReadFile(other.path("private_keys/broker.example.net.pem"))
		s := newSSL(t, sslOptions{})
		s.write(t, "private_keys/broker.example.net.pem", data)
		expect(t, item(t, run(t, pkiFiles{}, s.env(t)), "key"), Fail, "does not belong to certificate")
	})
	t.Run("certificate missing, key present", func(t *testing.T) {
		s := newSSL(t, sslOptions{})
		os.Remove(s.path("certs/broker.example.net.pem"))
		expect(t, item(t, run(t, pkiFiles{}, s.env(t)), "key"), Warn, "not compared")
	})
	t.Run("garbage certificate", func(t *testing.T) {
		s := newSSL(t, sslOptions{})
		s.write(t, "certs/broker.example.net.pem", []byte("not a certificate\n"))
		expect(t, item(t, run(t, pkiFiles{}, s.env(t)), "certificate"), Fail, "no PEM certificate found")
	})
	t.Run("foreign CA bundle", func(t *testing.T) {
		s := newSSL(t, sslOptions{})
		other := newSSL(t, sslOptions{})
		s.write(t, "certs/ca.pem", pki.CertsPEM(other.ca.Cert))
		expect(t, item(t, run(t, pkiFiles{}, s.env(t)), "ca"), Fail, "does not chain to", "unknown CA")
	})
	t.Run("client-only certificate", func(t *testing.T) {
		s := newSSL(t, sslOptions{issue: pki.IssueOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}})
		rs := run(t, pkiFiles{}, s.env(t))
		expect(t, item(t, rs, "certificate"), Fail, "cannot serve TLS")
		expect(t, item(t, rs, "ca"), Pass)
	})
	t.Run("file provider without files", func(t *testing.T) {
		cfg := parse(t, "identity = b.example.net\nplugin.security.provider = file\nplugin.security.file.certificate = /nonexistent/c.pem\nplugin.security.file.key = /nonexistent/k.pem\nplugin.security.file.ca = /nonexistent/ca.pem\n")
		r := item(t, run(t, pkiFiles{}, hostEnv(t, "tuned", cfg)), "certificate")
		expect(t, r, Fail, "/nonexistent/c.pem: file does not exist")
		if !strings.Contains(r.Fix, "plugin.security.file.certificate") {
			t.Errorf("fix %q", r.Fix)
		}
	})
}

func TestPKIExpiry(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s := newSSL(t, sslOptions{})
	rs := run(t, pkiExpiry{}, s.env(t))
	expect(t, item(t, rs, "certificate"), Pass, "days)")
	expect(t, item(t, rs, "ca"), Pass)

	s = newSSL(t, sslOptions{issue: pki.IssueOptions{NotAfter: now.Add(10 * 24 * time.Hour)}})
	expect(t, item(t, run(t, pkiExpiry{}, s.env(t)), "certificate"), Warn, "(9 days)")

	s = newSSL(t, sslOptions{issue: pki.IssueOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}})
	r := item(t, run(t, pkiExpiry{}, s.env(t)), "certificate")
	expect(t, r, Fail, "expired")
	if !strings.Contains(r.Fix, "puppetserver ca clean --certname broker.example.net") {
		t.Errorf("fix %q", r.Fix)
	}

	s = newSSL(t, sslOptions{issue: pki.IssueOptions{NotBefore: now.Add(24 * time.Hour)}})
	expect(t, item(t, run(t, pkiExpiry{}, s.env(t)), "certificate"), Fail, "not valid until")

	// A CA that ends in 20 days ends every node's trust with it.
	env := newSSL(t, sslOptions{}).env(t)
	env.Now = now.Add(5*365*24*time.Hour - 20*24*time.Hour)
	expect(t, item(t, run(t, pkiExpiry{}, env), "ca"), Warn, "Test Puppet CA")

	s = newSSL(t, sslOptions{})
	os.Remove(s.path("certs/broker.example.net.pem"))
	expect(t, run(t, pkiExpiry{}, s.env(t))[0], Skip)
}

func TestPKICRL(t *testing.T) {
	t.Parallel()
	now := time.Now()
	expect(t, one(t, pkiCRL{}, newSSL(t, sslOptions{}).env(t)), Pass, "1 CRL, 0 revoked, next update")

	r := one(t, pkiCRL{}, newSSL(t, sslOptions{crlNext: now.Add(-24 * time.Hour)}).env(t))
	expect(t, r, Warn, "next update was due")
	if !strings.Contains(r.Fix, "curl -fsS --cacert") || !strings.Contains(r.Fix, "https://puppet:8140/puppet-ca/v1/certificate_revocation_list/ca") {
		t.Errorf("fix %q", r.Fix)
	}
	r = one(t, pkiCRL{}, newSSL(t, sslOptions{crlNext: now.Add(-24 * time.Hour)}).env(t, "plugin.choria.puppetca_host = ca.example.net"))
	if !strings.Contains(r.Fix, "https://ca.example.net:8140/") {
		t.Errorf("fix ignores puppetca_host: %q", r.Fix)
	}

	expect(t, one(t, pkiCRL{}, newSSL(t, sslOptions{noCRL: true}).env(t)), Warn, "does not exist: revoked certificates are admitted")
	expect(t, one(t, pkiCRL{}, newSSL(t, sslOptions{revokeSelf: true}).env(t)), Fail, "revokes CN=broker.example.net")

	s := newSSL(t, sslOptions{})
	other := newSSL(t, sslOptions{})
	crl, _ := os.ReadFile(other.path("crl.pem"))
	s.write(t, "crl.pem", crl)
	r = one(t, pkiCRL{}, s.env(t))
	expect(t, r, Fail, "come from different CAs")
	if !strings.HasPrefix(r.Fix, "the broker refuses to start") {
		t.Errorf("fix %q", r.Fix)
	}

	cfg := parse(t, "identity = b.example.net\nplugin.security.provider = file\nplugin.security.file.certificate = "+s.path("certs/broker.example.net.pem")+
		"\nplugin.security.file.key = "+s.path("private_keys/broker.example.net.pem")+"\nplugin.security.file.ca = "+s.path("certs/ca.pem")+"\n")
	expect(t, one(t, pkiCRL{}, hostEnv(t, "tuned", cfg)), Warn, "no CRL configured")
}

func TestPKINames(t *testing.T) {
	t.Parallel()
	s := newSSL(t, sslOptions{issue: pki.IssueOptions{DNSNames: []string{"nats.example.net"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}})
	rs := run(t, pkiNames{}, s.env(t, "plugin.choria.network.public_url = nats://nats.example.net:4222"))
	expect(t, item(t, rs, "identity"), Pass)
	expect(t, item(t, rs, "public_url"), Pass)

	// A certificate that does not cover the identity.
	s = newSSL(t, sslOptions{issue: pki.IssueOptions{Name: "broker.example.net"}})
	s.identity = "nats1.example.net"
	s.write(t, "certs/nats1.example.net.pem", pki.CertsPEM(s.pair.Chain...))
	r := item(t, run(t, pkiNames{}, s.env(t)), "identity")
	expect(t, r, Fail, "do not include nats1.example.net")
	if !strings.Contains(r.Fix, "set identity to one of broker.example.net") {
		t.Errorf("fix %q", r.Fix)
	}

	s = newSSL(t, sslOptions{})
	rs = run(t, pkiNames{}, s.env(t, "plugin.choria.network.public_url = vip.example.net:4222"))
	r = item(t, rs, "public_url")
	expect(t, r, Fail, "do not include vip.example.net")
	if !strings.Contains(r.Fix, "dns_alt_names = vip.example.net") {
		t.Errorf("fix %q", r.Fix)
	}

	// Peers dial this broker by its listed address: an IP must be on the certificate.
	peers := "plugin.choria.network.listen_address = 127.0.0.1\nplugin.choria.network.peers = 127.0.0.1:4223, 127.0.0.2:4223"
	expect(t, item(t, run(t, pkiNames{}, s.env(t, peers)), "peers"), Fail, "do not include 127.0.0.1")
	s = newSSL(t, sslOptions{issue: pki.IssueOptions{IPs: []net.IP{net.ParseIP("127.0.0.1")}}})
	expect(t, item(t, run(t, pkiNames{}, s.env(t, peers)), "peers"), Pass)
	expect(t, item(t, run(t, pkiNames{}, s.env(t, peers)), "routes"), Pass, "taken as a route by 127.0.0.1")
	// Not listed at all: peers with the same list refuse its routes, unless
	// cluster_brokers names it.
	other := "plugin.choria.network.peers = a.example.net, c.example.net"
	rs = run(t, pkiNames{}, s.env(t, other))
	expect(t, item(t, rs, "peers"), Warn, "no peer entry is this broker")
	r = item(t, rs, "routes")
	expect(t, r, Fail, "peers will refuse this broker's routes", "not a cluster peer", "broker.example.net")
	if !strings.Contains(r.Fix, "broker.example.net:4223") || !strings.Contains(r.Fix, "cluster_brokers") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, item(t, run(t, pkiNames{}, s.env(t, other, `plugin.choria.network.cluster_brokers = ^broker\.`)), "routes"), Pass, `by ^broker\.`)
	// Without route TLS there is no certificate to check.
	for _, r := range run(t, pkiNames{}, s.env(t, other, "plugin.choria.network.peer_tls = false")) {
		if r.Item == "routes" {
			t.Errorf("routes checked with route TLS off: %+v", r)
		}
	}
}

func TestHandshakeCapacity(t *testing.T) {
	t.Parallel()
	s := newSSL(t, sslOptions{})
	env := s.env(t)
	env.Nodes = 1000
	expect(t, one(t, handshakes{}, env), Pass, "ECDSA P-256", "signatures/s per core")

	s = newSSL(t, sslOptions{issue: pki.IssueOptions{KeyType: "rsa", RSABits: 2048}})
	env = s.env(t)
	if _, err := timeSignatures(t.Context(), s.pair.Key, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The verdict from a fixed signature time: a measured one differs
	// between two measurements on a busy machine (or under -race).
	const sig = time.Millisecond
	fixed := handshakes{timeSig: func(context.Context, crypto.Signer, time.Duration) (time.Duration, error) { return sig, nil }}
	// A fleet whose storm takes ~80 s: warn.
	connect := time.Duration(connectSigFactor*float64(sig)) + connectFixed
	env.Nodes = int(80 * time.Second * time.Duration(env.Sys.CPUs()) / connect)
	r := one(t, fixed, env)
	expect(t, r, Warn, "RSA 2048", "1 000 signatures/s")
	if !strings.Contains(r.Fix, "ECDSA P-256") {
		t.Errorf("fix %q", r.Fix)
	}
	env.Nodes *= 10
	expect(t, one(t, fixed, env), Fail)

	os.Remove(s.path("private_keys/broker.example.net.pem"))
	expect(t, one(t, handshakes{}, s.env(t)), Skip)
}

func TestHandshakeWeakKey(t *testing.T) {
	t.Setenv("GODEBUG", "rsa1024min=0") // let the test make a 1024-bit key
	s := newSSL(t, sslOptions{issue: pki.IssueOptions{KeyType: "rsa", RSABits: 1024}})
	env := s.env(t)
	env.Nodes = 10
	r := one(t, handshakes{}, env)
	expect(t, r, Fail, "RSA 1024")
	if !strings.Contains(r.Fix, "too weak") {
		t.Errorf("fix %q", r.Fix)
	}
}

// Every way the broker's files can be wrong gets its own fix, naming the
// file or setting to mend; the verdict is what run's pki.Load says.
func TestPKIFilesFixPerFailure(t *testing.T) {
	t.Parallel()
	now := time.Now()
	const cert, key, ca = "certs/broker.example.net.pem", "private_keys/broker.example.net.pem", "certs/ca.pem"
	cut := func(s *ssl, rel string) { // the first half of the file: no END line
		data, _ := os.ReadFile(s.path(rel))
		s.write(t, rel, data[:len(data)/2])
	}
	damaged := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	cases := []struct {
		name  string
		opts  sslOptions
		mod   func(s *ssl)
		extra []string
		item  string
		fix   []string // the fix says these; "<dir>" is the ssldir
	}{
		{"certificate missing", sslOptions{}, func(s *ssl) { os.Remove(s.path(cert)) }, nil, "certificate", []string{"choria-broker enroll --config", "<dir>/certs/<identity>.pem"}},
		{"certificate garbage", sslOptions{}, func(s *ssl) { s.write(t, cert, []byte("<html>404</html>\n")) }, nil, "certificate", []string{"<dir>/" + cert + " is not PEM", "copy the certificate again", "openssl x509 -inform der"}},
		{"certificate empty", sslOptions{}, func(s *ssl) { s.write(t, cert, nil) }, nil, "certificate", []string{"<dir>/" + cert + " is empty", "copy the certificate again"}},
		{"certificate truncated", sslOptions{}, func(s *ssl) { cut(s, cert) }, nil, "certificate", []string{"<dir>/" + cert + " is cut short", "re-issue it with choria-broker enroll"}},
		{"certificate damaged", sslOptions{}, func(s *ssl) { s.write(t, cert, damaged) }, nil, "certificate", []string{"<dir>/" + cert + " has a PEM block that does not decode"}},
		{"certificate is a key", sslOptions{}, func(s *ssl) { k, _ := os.ReadFile(s.path(key)); s.write(t, cert, k) }, nil, "certificate", []string{"<dir>/" + cert + " holds no certificate", "put the certificate at <dir>/" + cert}},
		{"certificate expired", sslOptions{issue: pki.IssueOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}}, nil, nil, "certificate", []string{"renew <dir>/" + cert, "puppetserver ca clean --certname broker.example.net"}},
		{"certificate not yet valid", sslOptions{issue: pki.IssueOptions{NotBefore: now.Add(time.Hour)}}, nil, nil, "certificate", []string{"<dir>/" + cert + " is valid only from", "timedatectl"}},
		{"certificate names another identity", sslOptions{issue: pki.IssueOptions{Name: "broker.example.net", DNSNames: []string{"other.example.net"}}}, nil, []string{"identity = other2.example.net"}, "certificate", nil},
		{"certificate without serverAuth", sslOptions{issue: pki.IssueOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}}, nil, nil, "certificate", []string{"serverAuth and clientAuth"}},
		{"key missing", sslOptions{}, func(s *ssl) { os.Remove(s.path(key)) }, nil, "key", []string{"the key belongs at <dir>/" + key, "private_keys/<identity>.pem", "choria-broker enroll --config"}},
		{"key garbage", sslOptions{}, func(s *ssl) { s.write(t, key, []byte("hunter2\n")) }, nil, "key", []string{"<dir>/" + key + " is not PEM", "copy the key again", "openssl pkey -inform der"}},
		{"key truncated", sslOptions{}, func(s *ssl) { cut(s, key) }, nil, "key", []string{"<dir>/" + key + " is cut short", "copy the key again"}},
		{"key encrypted", sslOptions{}, func(s *ssl) {
			s.write(t, key, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
		}, nil, "key", []string{"decrypt the key with openssl pkey -in <dir>/" + key}},
		{"key is a certificate", sslOptions{}, func(s *ssl) { c, _ := os.ReadFile(s.path(cert)); s.write(t, key, c) }, nil, "key", []string{"<dir>/" + key + " holds no private key", "put the certificate's key at <dir>/" + key}},
		{"key of another certificate", sslOptions{}, func(s *ssl) {
			other := newSSL(t, sslOptions{})
			k, _ := os.ReadFile(other.path(key))
			s.write(t, key, k)
		}, nil, "key", []string{"<dir>/" + key + " is the key of another certificate", "issued for", "puppetserver ca clean"}},
		{"ca missing", sslOptions{}, func(s *ssl) { os.Remove(s.path(ca)) }, nil, "ca", []string{"fetch the CA bundle to <dir>/" + ca, "https://puppet:8140/puppet-ca/v1/certificate/ca"}},
		{"ca garbage", sslOptions{}, func(s *ssl) { s.write(t, ca, []byte("garbage\n")) }, nil, "ca", []string{"<dir>/" + ca + " is not PEM", "re-fetch the CA bundle from the Puppet CA", "-fingerprint"}},
		{"ca truncated", sslOptions{}, func(s *ssl) { cut(s, ca) }, nil, "ca", []string{"<dir>/" + ca + " is cut short", "re-fetch the CA bundle"}},
		{"ca of another CA", sslOptions{}, func(s *ssl) { s.write(t, ca, pki.CertsPEM(newSSL(t, sslOptions{}).ca.Cert)) }, nil, "ca", []string{"the bundle of the CA that signed the certificate"}},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		s := newSSL(t, tc.opts)
		if tc.name == "certificate names another identity" {
			// The ssldir holds other2's files, but the certificate names others.
			s.identity = "other2.example.net"
			k, _ := os.ReadFile(s.path(key))
			s.write(t, "certs/other2.example.net.pem", pki.CertsPEM(s.pair.Chain...))
			s.write(t, "private_keys/other2.example.net.pem", k)
			tc.fix = []string{"set identity to one of broker.example.net, other.example.net, or issue a certificate for other2.example.net"}
		}
		if tc.mod != nil {
			tc.mod(s)
		}
		r := item(t, run(t, pkiFiles{}, s.env(t, tc.extra...)), tc.item)
		if r.Status != Fail {
			t.Errorf("%s: %s %s: %q", tc.name, tc.item, r.Status, r.Found)
			continue
		}
		fix := strings.ReplaceAll(r.Fix, s.dir, "<dir>")
		for _, w := range tc.fix {
			if !strings.Contains(fix, w) {
				t.Errorf("%s: fix %q does not say %q", tc.name, fix, w)
			}
		}
		if prev, dup := seen[fix]; dup {
			t.Errorf("%s and %s get the same fix %q", prev, tc.name, fix)
		}
		seen[fix] = tc.name
	}

	// The file provider names its settings.
	s := newSSL(t, sslOptions{})
	cfg := parse(t, "identity = broker.example.net\nplugin.security.provider = file\nplugin.security.file.certificate = "+s.path(cert)+
		"\nplugin.security.file.key = "+s.path("nope.pem")+"\nplugin.security.file.ca = "+s.path(ca)+"\n")
	r := item(t, run(t, pkiFiles{}, hostEnv(t, "tuned", cfg)), "key")
	expect(t, r, Fail, "nope.pem: file does not exist")
	if !strings.Contains(r.Fix, "set plugin.security.file.key") {
		t.Errorf("fix %q", r.Fix)
	}
}
