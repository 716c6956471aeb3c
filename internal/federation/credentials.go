package federation

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// credentials are the broker's client certificate and trust. The
// certificate is read at every handshake through a pointer, so a renewed
// one (Puppet renews them in place) is used from the next reconnect on,
// without a restart and without dropping the links that are up.
type credentials struct {
	files  pki.Files
	roots  *x509.CertPool // the CA bundle, to check a renewed certificate against
	mu     sync.Mutex     // one reload at a time
	cert   atomic.Pointer[tls.Certificate]
	config *tls.Config
}

func loadCredentials(cfg *config.Config) (*credentials, error) {
	c := &credentials{files: pki.ResolveFiles(cfg)}
	cas, err := pki.ReadCertificates(c.files.CA)
	if err != nil {
		return nil, fmt.Errorf("security provider %s: %w", c.files.Provider, err)
	}
	c.config = fleet.TLSConfig(nil, cas)
	cfg.Security.ApplyTLS(c.config) // plugin.security.cipher_suites, ecc_curves
	c.roots = c.config.RootCAs
	cert, err := c.readCert(time.Now())
	if err != nil {
		return nil, err
	}
	c.cert.Store(cert)
	c.config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return c.cert.Load(), nil
	}
	return c, nil
}

// readCert reads the certificate and key and checks that they belong
// together, are valid at now and chain to the CA bundle: the brokers
// would refuse anything else at every connection.
func (c *credentials) readCert(now time.Time) (*tls.Certificate, error) {
	kp, err := pki.LoadKeyPair(c.files.Certificate, c.files.Key)
	if err != nil {
		return nil, fmt.Errorf("security provider %s: %w", c.files.Provider, err)
	}
	if err := pki.CheckValidity(c.files.Certificate, kp.Leaf(), now); err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, ic := range kp.Chain[1:] {
		inter.AddCert(ic)
	}
	opts := x509.VerifyOptions{Roots: c.roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := kp.Leaf().Verify(opts); err != nil {
		return nil, fmt.Errorf("security provider %s: %s (%s) does not chain to the CA bundle %s: %v; use a certificate issued by that CA", c.files.Provider, c.files.Certificate, kp.Leaf().Subject, c.files.CA, err)
	}
	return kp.TLS(), nil
}

// reload rereads the certificate and key; on any error the current pair
// stays in use.
func (c *credentials) reload(now time.Time) (*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, err := c.readCert(now)
	if err != nil {
		return nil, err
	}
	c.cert.Store(cert)
	return cert.Leaf, nil
}
