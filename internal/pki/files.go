package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
)

// Files are the paths a security provider resolves to.
type Files struct {
	Provider    string // puppet or file, for messages
	Certificate string
	Key         string
	CA          string
	CRL         string // "" when none is configured
	// CRLOptional is true when the CRL path is a provider default rather
	// than a setting: a missing file then means "no CRL", with a warning.
	CRLOptional bool
	// Looked lists where the certificate was looked for, in order, and
	// ConfigFile the configuration that said so: a missing certificate's
	// error names them all and the enroll command that fills the first.
	Looked     []Place
	ConfigFile string
}

// A Place is a certificate path and the reason it was looked at.
type Place struct{ Path, Why string }

// ResolveFiles maps the security settings to paths: the Puppet ssldir
// layout for provider puppet, explicit settings for provider file.
//
// Without plugin.choria.ssldir the broker's certificate is looked for in
// config.EnrollSSLDir, where `choria-broker enroll` keeps it, then in
// Puppet's ssldir: an operator who enrolled wants that certificate even on
// a Puppet-managed host, and one who did not gets go-choria's behaviour.
func ResolveFiles(cfg *config.Config) Files {
	return resolveFiles(cfg, config.EnrollSSLDir, config.PuppetSSLDir())
}

func resolveFiles(cfg *config.Config, enrollDir, puppetDir string) Files {
	s := cfg.Security
	if s.Provider == "file" {
		return Files{
			Provider: "file", Certificate: s.FileCertificate, Key: s.FileKey, CA: s.FileCA, CRL: s.FileCRL,
			Looked: []Place{{s.FileCertificate, "plugin.security.file.certificate"}}, ConfigFile: cfg.File,
		}
	}
	dirs := []Place{{s.SSLDir, "plugin.choria.ssldir"}}
	if s.SSLDir == "" {
		dirs = []Place{{enrollDir, "where choria-broker enroll keeps it"}}
		if puppetDir != enrollDir {
			dirs = append(dirs, Place{puppetDir, "Puppet's ssldir"})
		}
	}
	var looked []Place
	for _, d := range dirs {
		looked = append(looked, Place{PuppetLayout(d.Path, cfg.Identity).Certificate, d.Why})
	}
	// The first place holding the certificate wins; an unreadable one
	// counts, so its error shows rather than another certificate. With
	// none, the last (Puppet's) stays the default, as in go-choria.
	dir := dirs[len(dirs)-1].Path
	for i, p := range looked {
		if _, err := os.Lstat(p.Path); !errors.Is(err, fs.ErrNotExist) {
			dir = dirs[i].Path
			break
		}
	}
	f := PuppetLayout(dir, cfg.Identity)
	f.Looked, f.ConfigFile = looked, cfg.File
	if s.FileCRL != "" {
		f.CRL, f.CRLOptional = s.FileCRL, false
	}
	return f
}

// PuppetLayout is the files of identity in the Puppet ssldir dir.
func PuppetLayout(dir, identity string) Files {
	return Files{
		Provider:    "puppet",
		Certificate: filepath.Join(dir, "certs", identity+".pem"),
		Key:         filepath.Join(dir, "private_keys", identity+".pem"),
		CA:          filepath.Join(dir, "certs", "ca.pem"),
		CRL:         filepath.Join(dir, "crl.pem"),
		CRLOptional: true,
	}
}

// missingCertificate says where the certificate was looked for and the
// command that puts one there.
func (f Files) missingCertificate(identity string) error {
	var where []string
	for _, p := range f.Looked {
		where = append(where, fmt.Sprintf("%s (%s)", p.Path, p.Why))
	}
	conf := f.ConfigFile
	if conf == "" {
		conf = "<configuration file>"
	}
	hint := ", or set plugin.choria.ssldir to the ssldir that holds it"
	switch {
	case f.Provider == "file":
		hint = ", which writes the plugin.security.file.* paths"
	case len(f.Looked) == 1:
		hint = ", which keeps it there"
	}
	return fmt.Errorf("no certificate for %s: looked in %s; get one from the Puppet CA with `choria-broker enroll --config %s`%s",
		identity, strings.Join(where, " and "), conf, hint)
}

// Identity is the broker's own checked key pair and what it trusts.
type Identity struct {
	Files   Files
	KeyPair *KeyPair
	Trust   *Trust
	// Warnings are problems worth logging that do not stop the broker.
	Warnings []string
}

// Load reads and checks everything the broker needs at start-up: its
// certificate matches its key, is valid now and names identity; the CA
// bundle parses; the CRL verifies against the CA. Each error is a
// *PartError naming the file it concerns (see FailedParts).
func Load(f Files, identity string, now time.Time) (*Identity, error) {
	return load(f, identity, now, false)
}

// Reload is Load while the broker runs: with crlInForce, a CRL file that
// has gone (or cannot be read) is an error, so that the CRL in force stays
// rather than revocation turning off.
func Reload(f Files, identity string, now time.Time, crlInForce bool) (*Identity, error) {
	return load(f, identity, now, crlInForce)
}

func load(f Files, identity string, now time.Time, crlInForce bool) (*Identity, error) {
	if _, err := os.Stat(f.Certificate); errors.Is(err, fs.ErrNotExist) && len(f.Looked) > 0 {
		return nil, f.missingCertificate(identity)
	}
	var errs []error
	fail := func(p Part, err error) { errs = append(errs, partError(p, err)) }
	var kp *KeyPair
	chain, certErr := ReadCertificates(f.Certificate)
	if certErr != nil {
		fail(PartCertificate, certErr)
	}
	key, err := ReadPrivateKey(f.Key)
	if err != nil {
		fail(PartKey, err)
	}
	if certErr == nil && err == nil {
		if kp, err = pairUp(f.Certificate, f.Key, chain, key); err != nil {
			fail(PartKey, err)
		}
	}
	if certErr == nil {
		if err := CheckValidity(f.Certificate, chain[0], now); err != nil {
			fail(PartCertificate, err)
		}
		if identity != "" && !CoversName(chain[0], identity) {
			fail(PartCertificate, fmt.Errorf("%s: certificate names %v do not include the identity %q; set identity to one of them or issue a certificate for %q", f.Certificate, Names(chain[0]), identity, identity))
		}
	}
	id := &Identity{Files: f, KeyPair: kp}
	cas, err := ReadCertificates(f.CA)
	if err != nil {
		fail(PartCA, err)
	} else {
		crl, warn, err := loadCRL(f, cas, now, crlInForce)
		if err != nil {
			fail(PartCRL, err)
		}
		if warn != "" {
			id.Warnings = append(id.Warnings, warn)
		}
		id.Trust = NewTrust(cas, crl)
		if w := caWarning(f, id.Trust, now); w != "" {
			id.Warnings = append(id.Warnings, w)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := id.Trust.VerifyServer(kp.Chain, now); err != nil {
		var re *RefusedError
		if errors.As(err, &re) && re.Reason == WrongUsage {
			// A broker certificate without serverAuth fails at every client.
			return nil, partError(PartCertificate, fmt.Errorf("%s: the certificate cannot serve TLS: %v", f.Certificate, err))
		}
		id.Warnings = append(id.Warnings, fmt.Sprintf("%s: the broker certificate does not verify against %s: %v", f.Certificate, f.CA, err))
	}
	return id, nil
}

// caWarning says when CA certificates of the bundle are outside their validity.
func caWarning(f Files, t *Trust, now time.Time) string {
	invalid, none := t.CAValidity(now)
	switch {
	case none:
		return fmt.Sprintf("%s: no CA certificate in it is valid now (%s expired %s): every client will be refused; install the CA's current certificate", f.CA, invalid[0].Subject, invalid[0].NotAfter.UTC().Format(time.RFC3339))
	case len(invalid) > 0:
		return fmt.Sprintf("%s: CA certificate %s is outside its validity (%s to %s): certificates it issued will be refused", f.CA, invalid[0].Subject, invalid[0].NotBefore.UTC().Format(time.RFC3339), invalid[0].NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// LoadTrust rereads the CA bundle and CRL, for reloads that keep the key pair.
func LoadTrust(f Files, now time.Time) (*Trust, string, error) {
	return ReloadTrust(f, now, false)
}

// ReloadTrust is LoadTrust while the broker runs; crlInForce as for Reload.
// Errors are *PartError.
func ReloadTrust(f Files, now time.Time, crlInForce bool) (*Trust, string, error) {
	cas, err := ReadCertificates(f.CA)
	if err != nil {
		return nil, "", partError(PartCA, err)
	}
	crl, warn, err := loadCRL(f, cas, now, crlInForce)
	if err != nil {
		return nil, "", partError(PartCRL, err)
	}
	t := NewTrust(cas, crl)
	if w := caWarning(f, t, now); w != "" {
		warn = strings.TrimPrefix(warn+"; "+w, "; ")
	}
	return t, warn, nil
}

func loadCRL(f Files, cas []*x509.Certificate, now time.Time, crlInForce bool) (*RevocationList, string, error) {
	if f.CRL == "" {
		return nil, "no CRL configured (plugin.security.file.crl): revoked certificates will be admitted", nil
	}
	if _, err := os.Stat(f.CRL); err != nil && errors.Is(err, os.ErrNotExist) {
		if crlInForce {
			// Deleting a file must not turn revocation off.
			return nil, "", fmt.Errorf("%s: file does not exist; the CRL loaded before stays in force: put the CA's CRL back (restart the broker to run without one)", f.CRL)
		}
		if f.CRLOptional {
			return nil, fmt.Sprintf("%s does not exist: revoked certificates will be admitted until it does", f.CRL), nil
		}
	}
	crl, err := ReadRevocationList(f.CRL, cas)
	if err != nil {
		return nil, "", err
	}
	if crl.Stale(now) {
		return crl, fmt.Sprintf("%s: the CRL's next update was due %s; it is still enforced, but fetch a fresh one from the CA", f.CRL, crl.NextUpdate.UTC().Format(time.RFC3339)), nil
	}
	return crl, "", nil
}
