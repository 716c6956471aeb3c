package preflight

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"
)

// expiryWarnDays: Puppet agents renew their certificate this close to expiry
// (hostcert_renewal_interval); later than that, someone must act.
const expiryWarnDays = 30

// pkiExpiry: an expired broker certificate or CA refuses the whole fleet.
type pkiExpiry struct{}

func (pkiExpiry) Name() string { return "pki.expiry" }

func (pkiExpiry) Run(_ context.Context, env *Env) []Result {
	m := loadMaterial(env)
	var out []Result
	if leaf := m.leaf(); leaf != nil {
		out = append(out, expiry("certificate", leaf, env.Now,
			"renew the broker's certificate with the CA (Puppet: puppetserver ca clean --certname "+env.Config.Identity+" on the CA, then puppet ssl bootstrap here); the broker reloads it on SIGHUP"))
	} else {
		out = append(out, skipNoCert("a valid certificate"))
	}
	if m.caErr == nil {
		// The CA that expires first ends the fleet's trust first.
		first := m.cas[0]
		for _, c := range m.cas[1:] {
			if c.NotAfter.Before(first.NotAfter) {
				first = c
			}
		}
		out = append(out, expiry("ca", first, env.Now, "renew the CA and distribute its new bundle to every node and broker before this date"))
	}
	return out
}

func expiry(item string, c *x509.Certificate, now time.Time, fix string) Result {
	left := c.NotAfter.Sub(now)
	days := int(left.Hours() / 24)
	res := Result{Item: item, Status: Pass, Wanted: fmt.Sprintf("valid now, ≥ %d days left", expiryWarnDays),
		Found: fmt.Sprintf("%s expires %s (%d days)", c.Subject, c.NotAfter.UTC().Format("2006-01-02"), days)}
	switch {
	case now.Before(c.NotBefore):
		res.Status = Fail
		res.Found = fmt.Sprintf("%s is not valid until %s", c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
		res.Fix = "check this host's clock (timedatectl), or wait"
	case left <= 0:
		res.Status = Fail
		res.Found = fmt.Sprintf("%s expired %s", c.Subject, c.NotAfter.UTC().Format("2006-01-02"))
		res.Fix = fix
	case days < expiryWarnDays:
		res.Status = Warn
		res.Fix = fix
	}
	return res
}
