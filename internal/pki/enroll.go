package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
)

// EnrollOptions say what certificate to get and where to keep it.
type EnrollOptions struct {
	// Dir receives a Puppet-style ssldir: certs/<identity>.pem,
	// private_keys/<identity>.pem, certs/ca.pem, crl.pem, so that
	// plugin.choria.ssldir = Dir with provider puppet uses it. Files, when
	// set, say where each goes instead (CRL "" keeps none; see
	// EnrollTarget); Dir then only keeps the certificate request.
	Dir      string
	Files    Files
	Identity string
	Names    []string // extra names: public_url host, peers' names, IPs
	KeyType  string   // "ec" (P-256, default) or "rsa" (4096)
	Host     string
	Port     int
	// Wait bounds how long to wait for an operator to sign.
	Wait time.Duration
	// RenewBefore renews a certificate expiring within this long.
	RenewBefore time.Duration
	Progress    func(msg string)
}

// EnrollResult is what Enroll did.
type EnrollResult struct {
	Files     Files
	Renewed   bool
	UpToDate  bool
	NotAfter  time.Time
	KeyType   string
	CAFingerp string // SHA-256 of the CA certificate first trusted, when bootstrapped
}

// Enroll gets the broker its own certificate from a Puppet CA: a new key
// (ECDSA P-256 by default: a broker's handshake cost is its own key's
// signature), a CSR with every name clients use, submitted and waited for
// until an operator signs it; then the CA chain and CRL. A valid
// certificate far from expiry is kept; one close to expiry is renewed.
func Enroll(ctx context.Context, o EnrollOptions) (*EnrollResult, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	files := o.Files
	if files.Certificate == "" && o.Dir != "" {
		files = PuppetLayout(o.Dir, o.Identity)
	}
	if files.Certificate == "" || files.Key == "" || files.CA == "" {
		return nil, errors.New("enroll: no place for the certificate, key and CA (internal error: neither Dir nor Files set)")
	}
	res := &EnrollResult{Files: files}
	dirs := []string{filepath.Dir(files.Key), filepath.Dir(files.Certificate), filepath.Dir(files.CA)}
	if o.Dir != "" {
		dirs = append(dirs, filepath.Join(o.Dir, "certificate_requests"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("%w; run enroll as the user the broker runs as, or keep the certificate elsewhere with --dir or plugin.choria.ssldir", err)
		}
	}

	// The CA: what we trust already, else first use.
	var roots []*x509.Certificate
	if cas, err := ReadCertificates(files.CA); err == nil {
		roots = cas
	}
	if roots == nil {
		boot := NewPuppetCA(o.Host, o.Port, nil, nil)
		data, err := boot.CACertificates(ctx)
		boot.Close()
		if err != nil {
			return nil, err
		}
		cas, err := ParseCertificates("CA from "+boot.Base, data)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(cas[len(cas)-1].Raw)
		res.CAFingerp = strings.ToUpper(hex.EncodeToString(sum[:]))
		progress(fmt.Sprintf("trusting the Puppet CA at %s on first use; its root certificate's SHA-256 fingerprint is %s (compare with `puppetserver ca list --all` or openssl x509 -fingerprint -sha256 on the CA host)", boot.Base, res.CAFingerp))
		if err := WriteFile(files.CA, CertsPEM(cas...), 0o644); err != nil {
			return nil, err
		}
		roots = cas
	}
	trust := NewTrust(roots, nil)
	ca := NewPuppetCA(o.Host, o.Port, roots, nil)
	defer ca.Close()

	current, err := LoadKeyPair(files.Certificate, files.Key)
	switch {
	case err == nil && trust.VerifyServer(current.Chain, time.Now()) == nil && time.Until(current.Leaf().NotAfter) > o.RenewBefore:
		res.UpToDate, res.NotAfter = true, current.Leaf().NotAfter
		progress(fmt.Sprintf("%s is valid until %s; not renewing", files.Certificate, current.Leaf().NotAfter.UTC().Format(time.RFC3339)))
	case err == nil && trust.VerifyServer(current.Chain, time.Now()) == nil:
		if err := renew(ctx, o, current, roots, files, res, progress); err != nil {
			return nil, err
		}
	default:
		if err := request(ctx, o, ca, trust, files, res, progress); err != nil {
			return nil, err
		}
	}

	if files.CRL == "" {
		progress("no CRL saved: plugin.security.file.crl is not set")
		return res, nil
	}
	crl, err := ca.CRL(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := ParseRevocationList("CRL from "+ca.Base, crl, roots); err != nil {
		return nil, err
	}
	if err := WriteFile(files.CRL, crl, 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// request makes a key and a CSR, submits it and waits for the signature.
func request(ctx context.Context, o EnrollOptions, ca *PuppetCA, trust *Trust, files Files, res *EnrollResult, progress func(string)) error {
	// A key from an earlier, unsigned attempt is reused: its CSR may be
	// waiting at the CA already.
	key, err := ReadPrivateKey(files.Key)
	if err != nil {
		if key, err = newKey(o.KeyType); err != nil {
			return err
		}
		pemKey, err := KeyPEM(key)
		if err != nil {
			return err
		}
		if err := WriteFile(files.Key, pemKey, 0o600); err != nil {
			return err
		}
	}
	res.KeyType = keyTypeName(key)
	csr, err := makeCSR(key, o.Identity, o.Names)
	if err != nil {
		return err
	}
	if o.Dir != "" {
		if err := WriteFile(filepath.Join(o.Dir, "certificate_requests", o.Identity+".pem"), csr, 0o644); err != nil {
			return err
		}
	}
	if _, found, err := ca.Certificate(ctx, o.Identity); err != nil {
		return err
	} else if !found {
		if err := ca.SubmitCSR(ctx, o.Identity, csr); err != nil {
			return err
		}
	}
	progress(submitted(res.KeyType, o.Identity, o.Names))
	deadline := time.Now().Add(o.Wait)
	lastSay := time.Now()
	for {
		data, found, err := ca.Certificate(ctx, o.Identity)
		if err != nil {
			return err
		}
		if found {
			return store(data, key, trust, files, res)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the certificate request for %s was not signed within %s; sign it (puppetserver ca sign --certname %s) and run enroll again", o.Identity, o.Wait, o.Identity)
		}
		if time.Since(lastSay) >= 15*time.Second {
			progress(fmt.Sprintf("still waiting for the CA to sign %s (%s left)", o.Identity, time.Until(deadline).Round(time.Second)))
			lastSay = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// submitted tells the operator what was asked for and how to sign it.
func submitted(keyType, identity string, names []string) string {
	var also []string
	for _, n := range sanNames(identity, names) {
		if n != identity {
			also = append(also, n)
		}
	}
	extra := ""
	if len(also) > 0 {
		extra = ", also named " + strings.Join(also, ", ")
	}
	return fmt.Sprintf("submitted a certificate request for %s (%s key%s); sign it on the CA: puppetserver ca sign --certname %s", identity, keyType, extra, identity)
}

// renew asks the CA to renew the current certificate, keeping the key.
func renew(ctx context.Context, o EnrollOptions, current *KeyPair, roots []*x509.Certificate, files Files, res *EnrollResult, progress func(string)) error {
	ca := NewPuppetCA(o.Host, o.Port, roots, current.TLS())
	defer ca.Close()
	progress(fmt.Sprintf("%s expires %s; asking the CA to renew it", files.Certificate, current.Leaf().NotAfter.UTC().Format(time.RFC3339)))
	data, err := ca.Renew(ctx)
	if err != nil {
		return fmt.Errorf("%w; if this CA does not renew certificates, run: puppetserver ca clean --certname %s, then enroll again", err, o.Identity)
	}
	res.Renewed = true
	return store(data, current.Key, NewTrust(roots, nil), files, res)
}

// store checks a signed certificate against our key and the CA and writes it.
func store(data []byte, key crypto.Signer, trust *Trust, files Files, res *EnrollResult) error {
	certs, err := ParseCertificates("signed certificate", data)
	if err != nil {
		return err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(certs[0].PublicKey) {
		return errors.New("the CA returned a certificate for another key; an older request for this name may be pending: run puppetserver ca clean --certname <name> and enroll again")
	}
	if err := trust.VerifyServer(certs, time.Now()); err != nil {
		return fmt.Errorf("the signed certificate does not verify against the CA: %w", err)
	}
	res.NotAfter, res.KeyType = certs[0].NotAfter, keyTypeName(key)
	return WriteFile(files.Certificate, CertsPEM(certs...), 0o644)
}

func newKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "", "ec":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("key type %q: use ec or rsa", kind)
}

func keyTypeName(k crypto.Signer) string {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", k)
}

func makeCSR(key crypto.Signer, identity string, names []string) ([]byte, error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: identity}}
	for _, n := range sanNames(identity, names) {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// sanNames are the names a request carries: the identity first, then the
// extra names, trimmed, without blanks or repeats.
func sanNames(identity string, names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range append([]string{identity}, names...) {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

// EnrollTarget is where enroll keeps the broker's certificate for cfg, so
// that the broker run with the same cfg finds it: dir as a Puppet ssldir
// when given (a flag); the plugin.security.file.* paths for provider file;
// else plugin.choria.ssldir; else config.EnrollSSLDir, the first place
// ResolveFiles looks. ssldir is "" for provider file.
func EnrollTarget(cfg *config.Config, dir string) (files Files, ssldir string) {
	return enrollTarget(cfg, dir, config.EnrollSSLDir)
}

func enrollTarget(cfg *config.Config, dir, enrollDir string) (files Files, ssldir string) {
	s := cfg.Security
	if dir != "" {
		return PuppetLayout(dir, cfg.Identity), dir
	}
	if s.Provider == "file" {
		return Files{Provider: "file", Certificate: s.FileCertificate, Key: s.FileKey, CA: s.FileCA, CRL: s.FileCRL}, ""
	}
	dir = s.SSLDir
	if dir == "" {
		dir = enrollDir
	}
	files = PuppetLayout(dir, cfg.Identity)
	if s.FileCRL != "" {
		files.CRL = s.FileCRL // where the broker reads it
	}
	return files, dir
}

// EnrollAdvice says how the broker run with cfg will use the certificate
// enroll just kept in files: as it is, or after the settings it prints.
func EnrollAdvice(cfg *config.Config, files Files, ssldir string) string {
	run := ResolveFiles(cfg)
	if run.Certificate == files.Certificate && run.Key == files.Key && run.CA == files.CA {
		conf := cfg.File
		if conf == "" {
			conf = "<configuration file>"
		}
		return fmt.Sprintf("choria-broker run --config %s uses %s", conf, files.Certificate)
	}
	return fmt.Sprintf("the broker reads %s with this configuration; to use the new certificate set:\n  plugin.security.provider = puppet\n  plugin.choria.ssldir = %s", run.Certificate, ssldir)
}
