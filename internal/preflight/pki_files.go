package preflight

import (
	"context"
	"fmt"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// pkiFiles: the broker refuses to start without its certificate, the key
// that belongs to it, and a CA bundle it chains to.
type pkiFiles struct{}

func (pkiFiles) Name() string { return "pki.files" }

func (pkiFiles) Run(_ context.Context, env *Env) []Result {
	m := loadMaterial(env)
	f := m.files
	fix := certFix(env, f)

	cert := Result{Item: "certificate", Wanted: "a readable PEM certificate", Status: Pass}
	if m.certErr != nil {
		cert.Status, cert.Found, cert.Fix = Fail, m.certErr.Error(), fix
	} else {
		cert.Found = fmt.Sprintf("%s: %s, %s", f.Certificate, m.leaf().Subject, keyKind(m.leaf().PublicKey))
	}

	key := Result{Item: "key", Wanted: "the unencrypted key of the certificate", Status: Pass}
	switch {
	case m.keyErr != nil:
		key.Status, key.Found, key.Fix = Fail, m.keyErr.Error(), fix
	case m.pair == nil:
		key.Found = f.Key + ": readable; not compared, the certificate did not load"
		key.Status = Warn
		key.Fix = fix
	default:
		key.Found = fmt.Sprintf("%s: %s, belongs to the certificate", f.Key, keyKind(m.pair.Key.Public()))
	}

	ca := Result{Item: "ca", Wanted: "a CA bundle the certificate chains to, with serverAuth usage", Status: Pass}
	switch {
	case m.caErr != nil:
		ca.Status, ca.Found, ca.Fix = Fail, m.caErr.Error(), fix
	case m.certErr != nil:
		ca.Found = fmt.Sprintf("%s: %s; chain not checked, the certificate did not load", f.CA, plural(len(m.cas), "CA certificate"))
	default:
		ca.Found = fmt.Sprintf("%s: %s, the certificate chains to it", f.CA, plural(len(m.cas), "CA certificate"))
		// Validity is pki.expiry's; revocation is pki.crl's.
		err := pki.NewTrust(m.cas, nil).VerifyServer(m.chain, env.Now)
		switch refusal(err) {
		case "", pki.Expired, pki.NotYetValid:
		case pki.WrongUsage:
			ca.Status, ca.Found = Fail, fmt.Sprintf("%s cannot serve TLS: %v", f.Certificate, err)
			ca.Fix = "issue the broker a certificate with serverAuth and clientAuth usage, as the Puppet CA does"
		default:
			ca.Status, ca.Found = Fail, fmt.Sprintf("%s does not chain to %s: %v", f.Certificate, f.CA, err)
			ca.Fix = "point the CA setting at the bundle of the CA that signed the certificate, or get a certificate from this CA"
		}
	}
	return []Result{cert, key, ca}
}
