package preflight

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// material is the broker's own certificate, key and trust as far as they
// load; checks that need a part that did not load skip and point at pki.files.
type material struct {
	files   pki.Files
	chain   []*x509.Certificate
	certErr error
	pair    *pki.KeyPair
	keyErr  error
	cas     []*x509.Certificate
	caErr   error
	crl     *pki.RevocationList
	crlErr  error
}

func loadMaterial(env *Env) *material {
	m := &material{files: pki.ResolveFiles(env.Config)}
	m.chain, m.certErr = pki.ReadCertificates(m.files.Certificate)
	if m.certErr == nil {
		m.pair, m.keyErr = pki.LoadKeyPair(m.files.Certificate, m.files.Key)
	} else if _, err := pki.ReadPrivateKey(m.files.Key); err != nil {
		m.keyErr = err
	}
	m.cas, m.caErr = pki.ReadCertificates(m.files.CA)
	if m.caErr == nil && m.files.CRL != "" {
		m.crl, m.crlErr = pki.ReadRevocationList(m.files.CRL, m.cas)
	}
	return m
}

func (m *material) leaf() *x509.Certificate {
	if len(m.chain) == 0 {
		return nil
	}
	return m.chain[0]
}

// trust is what peers' certificates are checked against; nil without a CA.
func (m *material) trust() *pki.Trust {
	if m.caErr != nil {
		return nil
	}
	return pki.NewTrust(m.cas, m.crl)
}

// skipNoCert is the verdict of a check that needs the certificate.
func skipNoCert(what string) Result {
	return Result{Status: Skip, Found: "the certificate did not load (see pki.files)", Wanted: what}
}

// keyKind names a key as operators say it: RSA 2048, ECDSA P-256.
func keyKind(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}

// certFix says how to get a working certificate under the provider in use.
func certFix(env *Env, f pki.Files) string {
	if f.Provider == "file" {
		return "set plugin.security.file.certificate, .key and .ca to the broker's certificate, its key and the CA bundle"
	}
	dir := filepath.Dir(filepath.Dir(f.Certificate)) // the ssldir pki.ResolveFiles chose
	fix := fmt.Sprintf("the puppet provider reads %s/certs/<identity>.pem: run choria-broker enroll --config %s, or puppet agent -t (or puppet ssl bootstrap) for certname %s, or set identity to the certname this ssldir holds, or plugin.choria.ssldir to the right ssldir", dir, env.Config.File, env.Config.Identity)
	if names := certNamesIn(filepath.Join(dir, "certs")); len(names) > 0 {
		fix += "; certificates there: " + strings.Join(names, ", ")
	}
	return fix
}

// certNamesIn lists the certnames of a Puppet certs directory (ca.pem left out).
func certNamesIn(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".pem"); ok && n != "ca" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) > 5 {
		names = append(names[:5], "…")
	}
	return names
}

// refusal is the reason inside a pki.RefusedError, or "".
func refusal(err error) pki.Reason {
	var re *pki.RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// issuerOf finds the certificate that signed c among candidates.
func issuerOf(c *x509.Certificate, candidates []*x509.Certificate) *x509.Certificate {
	for _, p := range candidates {
		if string(p.RawSubject) == string(c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}
