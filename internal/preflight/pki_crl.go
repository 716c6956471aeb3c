package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// pkiCRL: without a CRL, or with one that is out of date, revoked
// certificates get in; one that does not verify stops the broker.
type pkiCRL struct{}

func (pkiCRL) Name() string { return "pki.crl" }

func (pkiCRL) Run(_ context.Context, env *Env) []Result {
	m := loadMaterial(env)
	f := m.files
	res := Result{Wanted: "a CRL from our CA whose next update is in the future", Status: Pass}
	switch {
	case f.CRL == "":
		res.Status, res.Found = Warn, "no CRL configured: revoked certificates are admitted"
		res.Fix = "set plugin.security.file.crl to the CA's CRL (Puppet: <ssldir>/crl.pem)"
		return []Result{res}
	case m.caErr != nil:
		return []Result{{Status: Skip, Found: "the CA bundle did not load (see pki.files)", Wanted: res.Wanted}}
	}
	fetch := fetchCRL(env, f.CA, f.CRL)
	if m.crlErr != nil {
		if _, err := os.Stat(f.CRL); errors.Is(err, os.ErrNotExist) && f.CRLOptional {
			res.Status, res.Found, res.Fix = Warn, f.CRL+" does not exist: revoked certificates are admitted until it does", fetch
			return []Result{res}
		}
		res.Status, res.Found = Fail, m.crlErr.Error()
		res.Fix = "the broker refuses to start with this CRL; " + fetch
		return []Result{res}
	}
	crl := m.crl
	next := "no next update"
	if !crl.NextUpdate.IsZero() {
		next = fmt.Sprintf("next update %s (%d days)", crl.NextUpdate.UTC().Format("2006-01-02"), int(crl.NextUpdate.Sub(env.Now).Hours()/24))
	}
	res.Found = fmt.Sprintf("%s: %s, %d revoked, %s", f.CRL, plural(crl.Count, "CRL"), crl.Entries, next)
	if crl.Stale(env.Now) {
		res.Status = Warn
		res.Found = fmt.Sprintf("%s: next update was due %s; revocations since are missing", f.CRL, crl.NextUpdate.UTC().Format(time.RFC3339))
		res.Fix = "the broker still enforces it; " + fetch
	}
	if leaf := m.leaf(); leaf != nil {
		for i, c := range m.chain {
			issuer := issuerOf(c, append(m.chain[i+1:], m.cas...))
			if issuer != nil && crl.Revoked(c, issuer) {
				res.Status = Fail
				res.Found = fmt.Sprintf("%s: revokes %s (serial %s)", f.CRL, c.Subject, c.SerialNumber.Text(16))
				res.Fix = "the broker's own certificate is revoked: peers and nodes that check the CRL refuse it; issue a new one"
			}
		}
	}
	return []Result{res}
}

// fetchCRL is the command that downloads the CA's current CRL.
func fetchCRL(env *Env, ca, crl string) string {
	return fmt.Sprintf("fetch the CA's current CRL: curl -fsS --cacert %s -o %s https://%s/puppet-ca/v1/certificate_revocation_list/ca (the broker rereads it within a second)",
		ca, crl, puppetCA(env))
}

// puppetCA is the Puppet CA's host:port as go-choria's settings name it.
func puppetCA(env *Env) string {
	host := env.Config.Raw["plugin.choria.puppetca_host"]
	if host == "" {
		host = "puppet"
	}
	port := env.Config.Raw["plugin.choria.puppetca_port"]
	if port == "" {
		port = strconv.Itoa(8140)
	}
	return net.JoinHostPort(host, port)
}
