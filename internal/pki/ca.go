package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a small certificate authority for development and tests. It
// issues certificates shaped like the Puppet CA's (serverAuth and clientAuth
// usage, CN plus DNS SANs) and keeps a CRL.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	Parent  *CA // nil for a root
	revoked []x509.RevocationListEntry
	number  int64
}

// NewCA makes a self-signed root CA with an RSA 2048 key.
func NewCA(name string, notBefore, notAfter time.Time) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := caTemplate(name, notBefore, notAfter)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// NewIntermediate makes a CA signed by ca, as Puppet 6+ does.
func (ca *CA) NewIntermediate(name string, notBefore, notAfter time.Time) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, caTemplate(name, notBefore, notAfter), ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Parent: ca}, nil
}

func caTemplate(name string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// Chain is the CA's certificate followed by its parents', as ca.pem holds them.
func (ca *CA) Chain() []*x509.Certificate {
	var out []*x509.Certificate
	for c := ca; c != nil; c = c.Parent {
		out = append(out, c.Cert)
	}
	return out
}

// IssueOptions shape an issued certificate. Zero values give a Puppet-like
// certificate valid from an hour ago for two years.
type IssueOptions struct {
	Name        string // CN, also the first DNS SAN
	DNSNames    []string
	IPs         []net.IP
	NotBefore   time.Time
	NotAfter    time.Time
	ExtKeyUsage []x509.ExtKeyUsage // nil: serverAuth and clientAuth, as Puppet issues
	NoEKU       bool               // no extended key usage at all
	KeyType     string             // "rsa" (default) or "ec"
	RSABits     int                // default 2048
	// Key, when set, is certified instead of a new key: an emulated fleet
	// gives each node its own certificate over one key.
	Key crypto.Signer
}

// Issue makes a key and a certificate for it.
func (ca *CA) Issue(o IssueOptions) (*KeyPair, error) {
	key := o.Key
	var err error
	switch {
	case key != nil:
	case o.KeyType == "" || o.KeyType == "rsa":
		bits := o.RSABits
		if bits == 0 {
			bits = 2048
		}
		key, err = rsa.GenerateKey(rand.Reader, bits)
	case o.KeyType == "ec":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("unknown key type %q: use rsa or ec", o.KeyType)
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(2 * 365 * 24 * time.Hour)
	}
	eku := o.ExtKeyUsage
	if eku == nil && !o.NoEKU {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: o.Name},
		DNSNames:              append([]string{o.Name}, o.DNSNames...),
		IPAddresses:           o.IPs,
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Chain: []*x509.Certificate{cert}, Key: key}, nil
}

// Revoke adds cert to the CA's CRL.
func (ca *CA) Revoke(cert *x509.Certificate) {
	ca.revoked = append(ca.revoked, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: time.Now()})
}

// CRL signs a CRL of everything revoked so far.
func (ca *CA) CRL(thisUpdate, nextUpdate time.Time) ([]byte, error) {
	ca.number++
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(ca.number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: ca.revoked,
	}, ca.Cert, ca.Key)
}

// CRLChainPEM is the CRL of this CA and of each parent, as Puppet's crl.pem holds them.
func (ca *CA) CRLChainPEM(thisUpdate, nextUpdate time.Time) ([]byte, error) {
	var out []byte
	for c := ca; c != nil; c = c.Parent {
		der, err := c.CRL(thisUpdate, nextUpdate)
		if err != nil {
			return nil, err
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})...)
	}
	return out, nil
}

// CertsPEM encodes certificates as PEM.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a key as PKCS#1 for RSA (what Puppet writes) and PKCS#8 otherwise.
func KeyPEM(key crypto.Signer) ([]byte, error) {
	if k, ok := key.(*rsa.PrivateKey); ok {
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFile writes data atomically (temporary file and rename), so a
// watcher never reads half a file.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
