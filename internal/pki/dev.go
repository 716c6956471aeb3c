package pki

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevPKI is a development CA laid out as a Puppet agent's ssldir, so the
// broker runs on it with provider puppet exactly as in production.
type DevPKI struct {
	SSLDir  string
	CA      *CA
	Broker  string   // certname of the broker
	Client  string   // certname of the client, <user>.mcollective
	Nodes   []string // certnames of node certificates
	Revoked string   // certname of a node certificate listed in the CRL
}

// Dev CA files beside the agent layout, as a Puppet CA keeps them.
const (
	devCACert = "ca/ca_crt.pem"
	devCAKey  = "ca/ca_key.pem"
	devCACRL  = "ca/ca_crl.pem"
)

// DevNodes is how many node certificates a development ssldir gets.
const DevNodes = 5

// EnsureDevPKI makes (once) a development CA and certificates in
// <dir>/ssl, reusing what exists. broker is the broker's certname; it gets
// SANs localhost, 127.0.0.1, ::1 and any extra names.
func EnsureDevPKI(dir, broker, user string, extra ...string) (*DevPKI, error) {
	ssl := filepath.Join(dir, "ssl")
	d := &DevPKI{SSLDir: ssl, Broker: broker, Client: user + ".mcollective", Revoked: "revoked.example.net"}
	for i := 1; i <= DevNodes; i++ {
		d.Nodes = append(d.Nodes, fmt.Sprintf("node%d.example.net", i))
	}
	ca, err := d.loadOrCreateCA()
	if err != nil {
		return nil, err
	}
	d.CA = ca

	var ips []net.IP
	var dns []string
	for _, n := range append([]string{"localhost", "127.0.0.1", "::1"}, extra...) {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else if n != broker {
			dns = append(dns, n)
		}
	}
	want := []IssueOptions{{Name: broker, DNSNames: dns, IPs: ips}, {Name: d.Client}}
	for _, n := range append(append([]string{}, d.Nodes...), d.Revoked) {
		want = append(want, IssueOptions{Name: n})
	}
	changed := false
	for _, o := range want {
		issued, err := d.ensureCert(o)
		if err != nil {
			return nil, err
		}
		changed = changed || issued
	}
	if _, err := os.Stat(d.path("crl.pem")); changed || err != nil {
		if err := d.revoke(d.Revoked); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// SSLDirCA is the CA of a development (or benchmark) ssldir, which keeps
// its key under ca/ as a Puppet CA does; nil when the ssldir has no CA key,
// as an agent's never has.
func SSLDirCA(ssldir string) (*CA, error) {
	d := &DevPKI{SSLDir: ssldir}
	if _, err := os.Stat(d.path(devCAKey)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return d.loadOrCreateCA()
}

func (d *DevPKI) path(rel string) string { return filepath.Join(d.SSLDir, rel) }

// CertFile, KeyFile, CAFile and CRLFile are the Puppet ssldir paths.
func (d *DevPKI) CertFile(name string) string { return d.path("certs/" + name + ".pem") }
func (d *DevPKI) KeyFile(name string) string  { return d.path("private_keys/" + name + ".pem") }
func (d *DevPKI) CAFile() string              { return d.path("certs/ca.pem") }
func (d *DevPKI) CRLFile() string             { return d.path("crl.pem") }

func (d *DevPKI) loadOrCreateCA() (*CA, error) {
	if _, err := os.Stat(d.path(devCAKey)); err == nil {
		certs, err := ReadCertificates(d.path(devCACert))
		if err != nil {
			return nil, err
		}
		key, err := ReadPrivateKey(d.path(devCAKey))
		if err != nil {
			return nil, err
		}
		ca := &CA{Cert: certs[0], Key: key}
		if crl, err := os.ReadFile(d.path(devCACRL)); err == nil {
			if rl, err := ParseRevocationList(d.path(devCACRL), crl, certs); err == nil {
				for serial := range rl.revoked[string(ca.Cert.RawSubject)] {
					ca.revoked = append(ca.revoked, revokedEntry(serial))
				}
			}
		}
		return ca, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	now := time.Now()
	ca, err := NewCA("Choria Broker Development CA", now.Add(-time.Hour), now.Add(10*365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	keyPEM, err := KeyPEM(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := WriteFile(d.path(devCAKey), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := WriteFile(d.path(devCACert), CertsPEM(ca.Cert), 0o644); err != nil {
		return nil, err
	}
	if err := WriteFile(d.CAFile(), CertsPEM(ca.Cert), 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// ensureCert issues name's certificate unless a valid one from this CA exists.
func (d *DevPKI) ensureCert(o IssueOptions) (bool, error) {
	if kp, err := LoadKeyPair(d.CertFile(o.Name), d.KeyFile(o.Name)); err == nil {
		if kp.Leaf().CheckSignatureFrom(d.CA.Cert) == nil && time.Until(kp.Leaf().NotAfter) > 30*24*time.Hour && coversAll(kp, o) {
			return false, nil
		}
	}
	kp, err := d.CA.Issue(o)
	if err != nil {
		return false, err
	}
	return true, kp.Save(d.CertFile(o.Name), d.KeyFile(o.Name))
}

func coversAll(kp *KeyPair, o IssueOptions) bool {
	for _, n := range o.DNSNames {
		if !CoversName(kp.Leaf(), n) {
			return false
		}
	}
	for _, ip := range o.IPs {
		if !CoversName(kp.Leaf(), ip.String()) {
			return false
		}
	}
	return true
}

// Revoke lists name's certificate in the CRL and rewrites crl.pem.
func (d *DevPKI) Revoke(name string) error { return d.revoke(name) }

func (d *DevPKI) revoke(name string) error {
	certs, err := ReadCertificates(d.CertFile(name))
	if err != nil {
		return err
	}
	already := false
	for _, e := range d.CA.revoked {
		already = already || e.SerialNumber.Cmp(certs[0].SerialNumber) == 0
	}
	if !already {
		d.CA.Revoke(certs[0])
	}
	now := time.Now()
	crl, err := d.CA.CRLChainPEM(now.Add(-time.Minute), now.Add(5*365*24*time.Hour))
	if err != nil {
		return err
	}
	if err := WriteFile(d.path(devCACRL), crl, 0o644); err != nil {
		return err
	}
	return WriteFile(d.CRLFile(), crl, 0o644)
}
