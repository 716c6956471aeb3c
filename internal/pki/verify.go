package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Reason says why a certificate was refused, in words an operator searches logs for.
type Reason string

// Refusal reasons.
const (
	NoCertificate Reason = "no certificate"
	UnknownCA     Reason = "unknown CA"
	Revoked       Reason = "revoked"
	Expired       Reason = "expired"
	NotYetValid   Reason = "not yet valid"
	WrongUsage    Reason = "wrong usage"
	Invalid       Reason = "invalid certificate"
)

// RefusedError is a certificate that did not pass VerifyClient.
type RefusedError struct {
	Reason  Reason
	Subject string // of the refused certificate, "" when none was given
	Detail  string
}

func (e *RefusedError) Error() string {
	if e.Subject == "" {
		return fmt.Sprintf("certificate refused: %s", e.Reason)
	}
	if e.Detail == "" {
		return fmt.Sprintf("certificate %q refused: %s", e.Subject, e.Reason)
	}
	return fmt.Sprintf("certificate %q refused: %s (%s)", e.Subject, e.Reason, e.Detail)
}

// Trust is a CA bundle and its revocations: what a peer's certificate is checked against.
type Trust struct {
	Roots *x509.CertPool
	// CAs are the bundle's certificates, which also serve as intermediates
	// for peers that send only their leaf.
	CAs           []*x509.Certificate
	intermediates *x509.CertPool
	CRL           *RevocationList // nil when no CRL is configured
}

// NewTrust builds a Trust from a CA bundle (root first or any order) and an optional CRL.
// Self-signed certificates are roots; the others serve as intermediates.
func NewTrust(cas []*x509.Certificate, crl *RevocationList) *Trust {
	t := &Trust{Roots: x509.NewCertPool(), intermediates: x509.NewCertPool(), CAs: cas, CRL: crl}
	for _, c := range cas {
		if isSelfSigned(c) {
			t.Roots.AddCert(c)
		} else {
			t.intermediates.AddCert(c)
		}
	}
	return t
}

func isSelfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// VerifyClient checks a peer's chain (leaf first) for client use at now:
// chains to the CA, clientAuth usage (or none), validity, not revoked by
// any CRL along the chain.
func (t *Trust) VerifyClient(certs []*x509.Certificate, now time.Time) error {
	return t.verify(certs, now, clientUsage)
}

// VerifyServer is VerifyClient for serverAuth use (peers of a cluster dialling us).
func (t *Trust) VerifyServer(certs []*x509.Certificate, now time.Time) error {
	return t.verify(certs, now, serverUsage)
}

// Read only; made once rather than at every handshake.
var (
	clientUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	serverUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
)

func (t *Trust) verify(certs []*x509.Certificate, now time.Time, usage []x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return &RefusedError{Reason: NoCertificate}
	}
	leaf := certs[0]
	inter := t.intermediates
	if len(certs) > 1 {
		inter = t.intermediates.Clone()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         t.Roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     usage,
	})
	if err != nil {
		return classify(leaf.Subject.String(), leaf, now, err)
	}
	// Any chain with a revoked link is refused: revocation of an
	// intermediate must not be bypassed by a cross-signed path.
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			if t.CRL.Revoked(chain[i], chain[i+1]) {
				detail := fmt.Sprintf("serial %s in %s", chain[i].SerialNumber.Text(16), t.CRL.File)
				if i > 0 {
					detail = fmt.Sprintf("issuing CA %q serial %s in %s", chain[i].Subject.String(), chain[i].SerialNumber.Text(16), t.CRL.File)
				}
				return &RefusedError{Reason: Revoked, Subject: leaf.Subject.String(), Detail: detail}
			}
		}
	}
	return nil
}

func classify(subject string, leaf *x509.Certificate, now time.Time, err error) error {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return &RefusedError{Reason: UnknownCA, Subject: subject, Detail: "issuer " + leaf.Issuer.String()}
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			if now.Before(leaf.NotBefore) {
				return &RefusedError{Reason: NotYetValid, Subject: subject, Detail: "valid from " + leaf.NotBefore.UTC().Format(time.RFC3339)}
			}
			if now.After(leaf.NotAfter) {
				return &RefusedError{Reason: Expired, Subject: subject, Detail: "expired " + leaf.NotAfter.UTC().Format(time.RFC3339)}
			}
			return &RefusedError{Reason: Expired, Subject: subject, Detail: "a CA in its chain is outside its validity: " + ci.Detail}
		case x509.IncompatibleUsage:
			return &RefusedError{Reason: WrongUsage, Subject: subject, Detail: fmt.Sprintf("extended key usage %s", usageNames(leaf.ExtKeyUsage))}
		}
	}
	return &RefusedError{Reason: Invalid, Subject: subject, Detail: err.Error()}
}

func usageNames(us []x509.ExtKeyUsage) string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
		x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
		x509.ExtKeyUsageAny: "any",
	}
	out := ""
	for i, u := range us {
		if i > 0 {
			out += ","
		}
		if n, ok := names[u]; ok {
			out += n
		} else {
			out += fmt.Sprintf("%d", u)
		}
	}
	return out
}
