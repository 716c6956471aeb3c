// Package pki reads and checks the certificates, keys, CA bundles and CRLs
// a Choria broker uses, from a Puppet ssldir or explicit files, and makes a
// development CA where no Puppet CA exists.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// ReadCertificates returns every certificate in a PEM file, in file order.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	return ParseCertificates(path, data)
}

// ParseCertificates parses every CERTIFICATE block of PEM data; name is used in errors.
func ParseCertificates(name string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i := 1; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: PEM block %d is not a valid certificate: %w", name, i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found; expected a file with -----BEGIN CERTIFICATE-----", name)
	}
	return certs, nil
}

// ReadPrivateKey reads an unencrypted RSA (PKCS#1 or PKCS#8), EC or Ed25519 key.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	return ParsePrivateKey(path, data)
}

// ParsePrivateKey parses the first private key block of PEM data.
func ParsePrivateKey(name string, data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM private key found; expected RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY", name)
		}
		if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
			return nil, fmt.Errorf("%s: the private key is encrypted; the broker needs an unencrypted key (decrypt it with: openssl pkey -in %s -out <new file>)", name, name)
		}
		var key any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: cannot parse %s: %w", name, block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("%s: unsupported private key type %T", name, key)
		}
	}
}

// KeyPair is a certificate chain with its private key, checked to belong together.
type KeyPair struct {
	CertFile, KeyFile string
	Chain             []*x509.Certificate // leaf first
	Key               crypto.Signer
}

// Leaf is the certificate the key belongs to.
func (k *KeyPair) Leaf() *x509.Certificate { return k.Chain[0] }

// TLS returns the pair for a tls.Config.
func (k *KeyPair) TLS() *tls.Certificate {
	tc := &tls.Certificate{PrivateKey: k.Key, Leaf: k.Chain[0]}
	for _, c := range k.Chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// Save writes the chain (leaf first) and the key (PKCS#8, mode 0600), each
// atomically, and records the paths in the pair; LoadKeyPair reads them back.
func (k *KeyPair) Save(certFile, keyFile string) error {
	key, err := KeyPEM(k.Key)
	if err != nil {
		return err
	}
	if err := WriteFile(keyFile, key, 0o600); err != nil {
		return err
	}
	if err := WriteFile(certFile, CertsPEM(k.Chain...), 0o644); err != nil {
		return err
	}
	k.CertFile, k.KeyFile = certFile, keyFile
	return nil
}

// LoadKeyPair reads a certificate and its key and checks that they match.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	chain, err := ReadCertificates(certFile)
	if err != nil {
		return nil, err
	}
	key, err := ReadPrivateKey(keyFile)
	if err != nil {
		return nil, err
	}
	return pairUp(certFile, keyFile, chain, key)
}

// pairUp checks that key belongs to the chain's leaf.
func pairUp(certFile, keyFile string, chain []*x509.Certificate, key crypto.Signer) (*KeyPair, error) {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("%s does not belong to certificate %s (%s); point the key setting at the key this certificate was issued for", keyFile, certFile, chain[0].Subject)
	}
	return &KeyPair{CertFile: certFile, KeyFile: keyFile, Chain: chain, Key: key}, nil
}

// CheckValidity reports a certificate that is expired or not yet valid at now.
func CheckValidity(file string, c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("%s: certificate %s is not valid until %s; check the clock or wait", file, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%s: certificate %s expired on %s; renew it with the CA", file, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Names lists the names a certificate is known by: its CN, DNS and IP SANs.
func Names(c *x509.Certificate) []string {
	var names []string
	if c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// CoversName reports whether name is the certificate's CN or one of its SANs
// (wildcards and IP addresses as TLS clients match them).
func CoversName(c *x509.Certificate, name string) bool {
	if strings.EqualFold(c.Subject.CommonName, name) {
		return true
	}
	if ip := net.ParseIP(name); ip != nil {
		for _, a := range c.IPAddresses {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}
	return c.VerifyHostname(name) == nil
}

func fileError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: file does not exist", path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s: permission denied; the broker's user must be able to read it", path)
	}
	return fmt.Errorf("%s: %w", path, err)
}
