package broker

import (
	"crypto/x509"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// Engine is the embedded NATS server once the broker is ready, else nil;
// the monitoring package reads Varz, Routez and Subsz from it.
func (b *Broker) Engine() *server.Server {
	select {
	case <-b.ready: // orders the read of b.srv after Run set it
		return b.srv
	default:
		return nil
	}
}

// TrustStatus is what monitoring shows of the broker's certificate and CRL.
type TrustStatus struct {
	CertSubject   string
	CertNotAfter  time.Time
	CRLFile       string // empty without a CRL
	CRLThisUpdate time.Time
	CRLNextUpdate time.Time // zero when the CRL has none
	CRLEntries    int
	CAFile        string
	CANotAfter    time.Time  // the earliest expiry of the bundle's CA certificates
	Trust         *pki.Trust // the CA bundle and CRL in force
}

// TrustStatus reports the certificate and CRL in force now (after reloads).
func (b *Broker) TrustStatus() TrustStatus {
	var s TrustStatus
	if c := b.cert.Load(); c != nil {
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		if leaf != nil {
			s.CertSubject, s.CertNotAfter = leaf.Subject.CommonName, leaf.NotAfter
		}
	}
	t := b.trust.Load()
	if t == nil {
		return s
	}
	s.Trust, s.CAFile = t, b.files.CA
	for _, c := range t.CAs {
		if s.CANotAfter.IsZero() || c.NotAfter.Before(s.CANotAfter) {
			s.CANotAfter = c.NotAfter
		}
	}
	if t.CRL != nil {
		s.CRLFile, s.CRLThisUpdate, s.CRLNextUpdate, s.CRLEntries = t.CRL.File, t.CRL.ThisUpdate, t.CRL.NextUpdate, t.CRL.Entries
	}
	return s
}

// ExpectedPeers is how many cluster peers the configuration names, this
// broker left out; 0 without a cluster.
func (b *Broker) ExpectedPeers() int { return b.expectedPeers }

// RouteNames are the server names of the connected cluster peers.
func (b *Broker) RouteNames() []string {
	if b.Engine() == nil {
		return nil
	}
	return b.routeNames()
}
